"""What a poll hands to storage: a source's collected posts as the store's own rows.

Sources know nothing of the database and storage knows no stage, so the worker, which wires the
two together, converts between their shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sigwatch.db.posts import NewPost
from sigwatch.sources.base import CollectedPost


def to_new_posts(posts: Sequence[CollectedPost]) -> list[NewPost]:
    """The store's rows for ``posts``, field for field, in the same order."""
    return [
        NewPost(
            external_id=post.external_id,
            text=post.text,
            url=post.url,
            author=post.author,
            title=post.title,
            html=post.html,
            published_at=post.published_at,
            metrics=post.metrics,
            raw=post.raw,
        )
        for post in posts
    ]
