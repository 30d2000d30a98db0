"""Write the gateway's OpenAPI document offline: `python -m gateway.openapi_dump [PATH] [--check]`.

The web client's TypeScript types are generated from this file. It is the very document
`GET /openapi.json` serves, built from the same route table, with no backend, Redis or
configuration needed; keys are sorted and indented so the committed copy diffs cleanly.
`servers` names PUBLIC_URL's default, never this machine's settings, so every checkout
writes the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.app import openapi_document

# PUBLIC_URL's default (gateway.config): the committed document must not depend on who wrote it.
DEFAULT_SERVER_URL = "http://127.0.0.1:8080"


def document(server_url: str = DEFAULT_SERVER_URL) -> dict[str, Any]:
    return openapi_document(server_url)


def render(doc: dict[str, Any]) -> bytes:
    """Stable bytes: sorted keys, two-space indent, a final newline."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.openapi_dump", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path,
                        help="where to write the document (default: standard output)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when PATH differs from the current document")
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL,
                        help=f"the document's servers[0].url (default {DEFAULT_SERVER_URL})")
    args = parser.parse_args(argv)
    body = render(document(args.server_url))
    if args.check:
        if args.path is None:
            parser.error("--check needs a PATH")
        current = args.path.read_bytes() if args.path.is_file() else b""
        if current != body:
            print(f"{args.path} is not the gateway's current OpenAPI document: run "
                  f"`python -m gateway.openapi_dump {args.path}`", file=sys.stderr)
            return 1
        return 0
    if args.path is None:
        sys.stdout.buffer.write(body)
    else:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_bytes(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
