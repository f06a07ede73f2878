"""MovieLens-100K: ``u.data`` ratings joined with ``u.user`` and ``u.item`` (genres multi-valued).

The ratings file is the chunked, validated input; the two small tables are loaded once per worker
(from any Beam filesystem) and joined by dict lookup, a batch at a time. A rating whose user or item
is absent from the tables is dead-lettered, not dropped.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from pipelines.processor import Enricher
from pipelines.schema import Column, LabelRule, Schema, SplitRule

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip


def movielens_schema(
    label_rule: str = ">= 4",
    eval_fraction: float = 0.1,
    salt: str = "",
    split_method: str = "hash",
    time_threshold: float | None = None,
) -> Schema:
    """``u.data``: user, item, rating, timestamp (tab-separated); label = rating rule."""
    return Schema(
        name="movielens",
        columns=(
            Column("user_id", "categorical"),
            Column("item_id", "categorical"),
            Column("rating", "label"),
            Column("timestamp", "ignored"),
        ),
        label=LabelRule(column="rating", rule=label_rule, name="label"),
        delimiter="\t",
        split=SplitRule(
            method=split_method,
            key=("user_id",) if split_method == "hash" else (),
            eval_fraction=eval_fraction,
            salt=salt,
            time_column="timestamp" if split_method == "time" else "",
            time_threshold=time_threshold,
        ),
    ).validate()


def _read_text(path: str, encoding: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as fh:
        return fh.read().decode(encoding)


def _release_year(date: str) -> bytes:
    """'01-Jan-1995' -> b'1995'; empty when unknown."""
    year = date.strip().rsplit("-", 1)[-1]
    return year.encode() if year.isdigit() else b""


class MovieLensJoin(Enricher):
    """Joins user demographics and item genres / release year onto each rating."""

    def __init__(self, directory: str):
        self.directory = directory
        self._users: dict[bytes, tuple[bytes, ...]] | None = None
        self._items: dict[bytes, tuple[bytes, bytes]] | None = None

    def columns(self) -> list[Column]:
        return [
            Column("age", "numeric", default=0.0),
            Column("gender", "categorical"),
            Column("occupation", "categorical"),
            Column("zip_code", "categorical"),
            Column("genres", "multi_categorical", separator="|"),
            Column("release_year", "numeric", default=0.0),
        ]

    def _load(self) -> tuple[dict[bytes, tuple[bytes, ...]], dict[bytes, tuple[bytes, bytes]]]:
        users: dict[bytes, tuple[bytes, ...]] = {}
        for line in _read_text(posixpath.join(self.directory, "u.user"), "latin-1").splitlines():
            if line.strip():
                uid, age, gender, occupation, zip_code = line.split("|")
                users[uid.encode()] = tuple(s.encode("utf-8") for s in (age, gender, occupation, zip_code))
        items: dict[bytes, tuple[bytes, bytes]] = {}
        for line in _read_text(posixpath.join(self.directory, "u.item"), "latin-1").splitlines():
            if line.strip():
                f = line.split("|")
                flags = f[5 : 5 + len(GENRES)]
                genres = "|".join(g for g, on in zip(GENRES, flags, strict=False) if on == "1")
                items[f[0].encode()] = (genres.encode("utf-8"), _release_year(f[2]))
        self._users, self._items = users, items
        return users, items

    def enrich(self, cols: dict[str, Sequence[bytes]]):
        if self._users is None or self._items is None:
            users, items = self._load()
        else:
            users, items = self._users, self._items
        no_user = (None,) * 4
        u = [users.get(v, no_user) for v in cols["user_id"]]
        it = [items.get(v, (None, None)) for v in cols["item_id"]]
        bad = {}
        for j, (ur, ir) in enumerate(zip(u, it, strict=True)):
            if ur[0] is None:
                bad[j] = ("join_user", f"user_id {cols['user_id'][j]!r} not in u.user")
            elif ir[0] is None:
                bad[j] = ("join_item", f"item_id {cols['item_id'][j]!r} not in u.item")
        if bad:
            u = [ur if ur[0] is not None else (b"",) * 4 for ur in u]
            it = [ir if ir[0] is not None else (b"", b"") for ir in it]
        age, gender, occupation, zip_code = (list(c) for c in zip(*u, strict=True))
        genres, year = (list(c) for c in zip(*it, strict=True))
        extra = {
            "age": age, "gender": gender, "occupation": occupation, "zip_code": zip_code,
            "genres": genres, "release_year": year,
        }  # fmt: skip
        return extra, bad
