"""Git object ids computed exactly as git does, so the stand-in's SHAs behave like real ones."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

EMPTY_TREE_SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
FILE_MODE = "100644"


def blob_sha(data: bytes) -> str:
    """The blob id `git hash-object` prints for data."""
    return _object_sha(b"blob", data)


def tree_sha(files: Mapping[str, bytes]) -> str:
    """The root tree id of a tree holding files (path to contents), all mode 100644."""
    return _tree(files)


def commit_sha(
    *,
    tree: str,
    parents: list[str],
    author: str,
    email: str,
    epoch: int,
    message: str,
) -> str:
    """The commit id of a commit authored and committed by one person at one instant."""
    lines = [f"tree {tree}"]
    lines.extend(f"parent {parent}" for parent in parents)
    signature = f"{author} <{email}> {epoch} +0000"
    lines.append(f"author {signature}")
    lines.append(f"committer {signature}")
    body = "\n".join(lines) + "\n\n" + message.rstrip("\n") + "\n"
    return _object_sha(b"commit", body.encode())


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a directory listing: a file or a sub-directory."""

    name: str
    path: str
    type: str  # "file" or "dir"
    sha: str
    size: int


def list_directory(files: Mapping[str, bytes], directory: str) -> list[TreeEntry] | None:
    """Entries directly inside directory ("" is the root); None when it is not a directory."""
    prefix = f"{directory}/" if directory else ""
    children: dict[str, dict[str, bytes]] = {}
    entries: list[TreeEntry] = []
    for path, data in files.items():
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        name, _, below = rest.partition("/")
        if below:
            children.setdefault(name, {})[below] = data
        else:
            entries.append(TreeEntry(name, prefix + name, "file", blob_sha(data), len(data)))
    if not entries and not children:
        return None
    for name, sub in children.items():
        entries.append(TreeEntry(name, prefix + name, "dir", _tree(sub), 0))
    return sorted(entries, key=lambda entry: entry.name)


def _tree(files: Mapping[str, bytes]) -> str:
    """Hash a tree, building sub-trees for nested paths."""
    blobs: dict[str, bytes] = {}
    subtrees: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        head, _, rest = path.partition("/")
        if rest:
            subtrees.setdefault(head, {})[rest] = data
        else:
            blobs[head] = data
    entries: list[tuple[str, bytes]] = []
    for name, data in blobs.items():
        raw = bytes.fromhex(blob_sha(data))
        entries.append((name, f"{FILE_MODE} {name}".encode() + b"\0" + raw))
    for name, sub in subtrees.items():
        raw = bytes.fromhex(_tree(sub))
        # git sorts a tree entry by its name with "/" appended.
        entries.append((name + "/", f"40000 {name}".encode() + b"\0" + raw))
    entries.sort(key=lambda item: item[0].encode())
    return _object_sha(b"tree", b"".join(entry for _, entry in entries))


def _object_sha(kind: bytes, data: bytes) -> str:
    header = kind + b" " + str(len(data)).encode() + b"\0"
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()
