"""Which Apprise URLs sigwatch sends to: an allowlist of schemes, and why the rest are refused.

sigwatch's SSRF guard can check a connection only where it can see it: Apprise's HTTP services all
send with ``requests`` and e-mail goes through ``smtplib``, and every socket those open during a
send is checked (see :func:`sigwatch.net.guard.checked_sockets`). Other Apprise plugins open
sockets of their own kinds (UDP syslog, MQTT, XMPP, IRC, Growl, SMPP, AMQP, Nostr relays) or act
on the machine sigwatch runs on (the local syslog, desktop notifications, D-Bus, USB lights), so
they are refused by name. It is an allowlist: a plugin added by a new Apprise release, or a
custom one, is refused until it is reviewed and listed here.
"""

from __future__ import annotations

import re
from functools import cache

from apprise.manager_plugins import NotificationManager
from apprise.plugins.base import NotifyBase

#: Schemes of the Apprise services that talk HTTP(S) through ``requests``. Reviewed against
#: Apprise 2.3.0; ``vapid://`` (Web Push) is left out because it needs key and subscription files
#: on the server's disk, which sigwatch does not let a channel read.
HTTP_SCHEMES: frozenset[str] = frozenset(
    """
    46elks acs apprise apprises atalk awswhatsapp azure bale bark barks betterstack bluesky
    brevo bsky bulksms bulkvs burstsms chanify clickatell clicksend cliq cm d7sms dapnet
    dingtalk discord dot eight00com elks emby embys enigma2 enigma2s evolution evolutions
    exotel fcm feishu firehydrant flock flowtriq flowtriqs fluxer fluxers form forms
    freemobile gchat github goalert goalerts gorush gorushs gotify gotifys groundmail
    groupme guilded gupshup hassio hassios httpsms humhub humhubs ifttt ilert incidentio
    infobip instagram jellyfin jellyfins jira join json jsons kakao kakaotalk kaleyra
    kavenegar klr kodi kodis kook kudosity kumulos lametric lametrics lark lauther lfg line
    mailersend mailgun mastodon mastodons matrix matrixs misskey misskeys mmost mmosts
    mobilemessage mobilemsg msg91 msgbird ncloud nclouds nctalk nctalks nexmo notica noticas
    notifiarr notifico notificos notifyapp notifyre ntfy ntfys o365 octopush onebot onebots
    onesignal opsgenie opsimate opsimates pagerduty pagertree parsep parseps pbul pinglet
    pinglets pingram pjet pjets plivo postmark pover prowl psafer psafers push pushdeer
    pushdeers pushed pushme pushplus pushward pushy qq reddit resend revolt ringc rocket
    rockets ryver schan sendgrid sendpulse serwersms ses session sessions seven sfr signal
    signalgrid signals signl4 simplepush sinch slack smsc smseagle smseagles smsmanager
    smsmgr smstunnel smtp2go sns sogs sparkpost spike splunk spugpush spush squadcast
    stackfield strmlabs synology synologys telesign telnyx tgram threema toot toots trigv
    trigvs tweet twilio twist twitter viber victorops voipms vonage webex wechat wecom
    wecombot whapi whatsapp workflow workflows wpush wxpusher wxteams x xbmc xbmcs xmatters
    xml xmls youlmk zalo zcliq zohocliq zoom zulip
    """.split()
)
#: E-mail, sent with smtplib through the same checked sockets.
EMAIL_SCHEMES: frozenset[str] = frozenset(("mailto", "mailtos"))
ALLOWED_SCHEMES: frozenset[str] = HTTP_SCHEMES | EMAIL_SCHEMES

_OWN_SOCKET = "opens its own network connection, which sigwatch's SSRF guard cannot check"
_LOCAL = "acts on the machine sigwatch runs on, not on a remote service"
#: Why each scheme Apprise knows and sigwatch refuses is refused, for the error message.
REFUSED_SCHEMES: dict[str, str] = {
    "rsyslog": "sends UDP datagrams through its own socket, which sigwatch's SSRF guard cannot "
    "check",
    "syslog": "writes to the system log of the machine sigwatch runs on",
    "mqtt": _OWN_SOCKET + " (MQTT over TCP)",
    "mqtts": _OWN_SOCKET + " (MQTT over TLS)",
    "xmpp": _OWN_SOCKET + " (XMPP)",
    "xmpps": _OWN_SOCKET + " (XMPP over TLS)",
    "irc": _OWN_SOCKET + " (IRC)",
    "ircs": _OWN_SOCKET + " (IRC over TLS)",
    "growl": _OWN_SOCKET + " (GNTP)",
    "smpp": _OWN_SOCKET + " (SMPP)",
    "smpps": _OWN_SOCKET + " (SMPP over TLS)",
    "amqp": _OWN_SOCKET + " (AMQP)",
    "amqps": _OWN_SOCKET + " (AMQP over TLS)",
    "aprs": _OWN_SOCKET + " (APRS-IS)",
    "nostr": _OWN_SOCKET + " (WebSocket relays)",
    "deltachat": "is e-mail for Delta Chat clients; use mailto:// or mailtos:// instead",
    "deltachats": "is e-mail for Delta Chat clients; use mailto:// or mailtos:// instead",
    "vapid": "needs key and subscription files on the server's disk",
    "windows": _LOCAL,
    "macosx": _LOCAL,
    "dbus": _LOCAL,
    "kde": _LOCAL,
    "qt": _LOCAL,
    "glib": _LOCAL,
    "gio": _LOCAL,
    "gnome": _LOCAL,
    "blink1": _LOCAL + " (a USB light)",
}

_SCHEME = re.compile(r"\s*(?P<scheme>[a-z0-9]{1,32})://", re.I)  # as Apprise reads it
_EXAMPLES = "tgram://, discord://, slack://, ntfy://, gotify://, matrix://, json://"


def scheme_of(url: str) -> str | None:
    """The scheme Apprise would read from ``url``, lower-cased, or None when it has none."""
    match = _SCHEME.match(url)
    return match.group("scheme").lower() if match else None


def scheme_refusal(url: str) -> str | None:
    """Why sigwatch will not send to ``url`` because of its scheme, or None when it may.

    ``http://`` and ``https://`` pass here: Apprise maps some services' own URLs (a Discord
    webhook URL) to their plugin, which :func:`plugin_refusal` then judges.
    """
    scheme = scheme_of(url)
    # An unknown scheme is left to Apprise, which says it is not an Apprise URL.
    if scheme is None or scheme in ALLOWED_SCHEMES or scheme not in _known_schemes():
        return None
    why = REFUSED_SCHEMES.get(scheme, "is not on sigwatch's list of reviewed Apprise services")
    return refusal_message(f"{scheme}://", why)


def plugin_refusal(plugin: NotifyBase) -> str | None:
    """Why sigwatch will not send through ``plugin``, or None when its class is allowed."""
    if type(plugin) in _allowed_plugins():
        return None
    name = str(getattr(plugin, "service_name", type(plugin).__name__))
    return refusal_message(name, "is not on sigwatch's list of reviewed Apprise services")


def refusal_message(what: str, why: str) -> str:
    """The message for a refused Apprise target: what is refused, why, and what to use instead."""
    return (
        f"{what} is not supported: it {why}. sigwatch sends Apprise notifications only to "
        f"services reached over HTTP(S) ({_EXAMPLES} … the full list is in docs/channels.md) "
        "and to e-mail (mailto://, mailtos://), whose every connection passes its SSRF guard; "
        "for any other HTTP endpoint use a webhook channel"
    )


@cache
def _known_schemes() -> frozenset[str]:
    """Every scheme the installed Apprise has a plugin for (custom plugins included)."""
    manager = NotificationManager()  # type: ignore[no-untyped-call]
    return frozenset(manager.schemas())  # type: ignore[no-untyped-call]


@cache
def _allowed_plugins() -> frozenset[type[NotifyBase]]:
    """The plugin classes the installed Apprise maps the allowed schemes to."""
    manager = NotificationManager()  # type: ignore[no-untyped-call]
    known = _known_schemes()
    return frozenset(manager[scheme] for scheme in ALLOWED_SCHEMES if scheme in known)
