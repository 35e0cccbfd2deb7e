"""TOML text to a dict, with nesting too deep for the parser reported as bad TOML.

tomllib parses arrays and inline tables recursively, so a few kilobytes of
`[[[[...` raise RecursionError, which would reach the user as "maximum
recursion depth exceeded" with no file named. Every TOML the user hands over
(schema, configuration, model card) goes through `loads`, so each reader's
own `TOMLDecodeError` message names the file and says why.
"""

from __future__ import annotations

import tomllib

MSG_TOO_DEEP = "arrays or inline tables nested too deeply to read (a hostile or damaged file)"


def loads(text: str) -> dict:
    """`tomllib.loads`, raising `tomllib.TOMLDecodeError` (never RecursionError) for excessive nesting."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError(MSG_TOO_DEEP) from None
