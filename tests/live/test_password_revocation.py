"""A password change ends the live streams signed in with tokens issued before it."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from api.conftest import PASSWORD
from live.support import no_event_within, receive_json, ws_client


async def test_a_password_change_closes_the_socket_at_the_next_check(live):
    live.runtime.settings = live.settings.model_copy(update={"live_recheck_s": 0.2})
    signed_in = await live.http.post(
        "/api/v1/auth/token", data={"username": "bob", "password": PASSWORD}
    )
    token = signed_in.json()["access_token"]
    async with ws_client(live.ws_url(token=token)) as ws:
        assert (await receive_json(ws))["type"] == "hello"
        await no_event_within(ws, 0.5)  # checked again and still valid
        changed = await live.http.post(
            "/api/v1/auth/password",
            json={"old_password": PASSWORD, "new_password": "a brand new passphrase"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert changed.status_code == 200, changed.text
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # pings may come first
                await receive_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "password was changed" in closed.value.rcvd.reason
