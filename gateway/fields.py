"""Field types shared by request bodies and client frames.

Text that people type (names, relationships, notes, reasons, descriptions)
is plain text (:data:`PLAIN_TEXT`): no control or format character, CR and
LF included, or it is a 422 (an ``invalid_data`` error frame).

Numbers are strict: a JSON string or boolean where a number belongs is a 422
(or an ``invalid_data`` error frame), never coerced (``"52.5"``, ``true``);
NaN and infinities are refused. Out of range is a 422 too: WGS84 degrees,
and the bounds below.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from config.text import first_control, is_control

#: The bounds below, by name (``gateway.quick_fixes`` reads fixes within them too).
LATITUDE_MAX: Final = 90
LONGITUDE_MAX: Final = 180
#: A heading is below this.
HEADING_BELOW: Final = 360
NON_NEGATIVE_MAX: Final = 1_000_000

#: Any finite JSON number (an integer or a float).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Latitude = Annotated[Number, Field(ge=-LATITUDE_MAX, le=LATITUDE_MAX)]
Longitude = Annotated[Number, Field(ge=-LONGITUDE_MAX, le=LONGITUDE_MAX)]
#: Degrees clockwise from north.
Heading = Annotated[Number, Field(ge=0, lt=HEADING_BELOW)]
#: A fix's accuracy (metres) or speed (metres per second) as reported with it.
NonNegative = Annotated[Number, Field(ge=0, le=NON_NEGATIVE_MAX)]
#: The accuracy (metres) of where an alert or a check-in is raised: at most 100 km.
PlaceAccuracy = Annotated[Number, Field(ge=0, le=100_000)]


# --- text -------------------------------------------------------------------------


def storable(value: str) -> str:
    """Refuse what PostgreSQL ``text`` cannot hold: NUL and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


@functools.cache
def plain_text_pattern(allowed: str = "") -> str:
    """The OpenAPI ``pattern`` of :data:`PLAIN_TEXT`: no Cc, Cf, Zl or Zp character.

    A character class of every refused character (``config.text``), built when
    the document is first asked for (it reads all of Unicode: ~0.3 s). Those
    of the Basic Multilingual Plane as ``\\uXXXX`` escapes, the few beyond
    it (tag characters, a handful of format characters) as the characters
    themselves: ECMA-262 (with the ``u`` flag) and Python read both the same.
    ``allowed``: refused characters let through all the same (chat's line feed).
    """
    parts: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if not is_control(chr(code)) or chr(code) in allowed:
            continue
        if parts and parts[-1][1] == code - 1:
            parts[-1] = (parts[-1][0], code)
        else:
            parts.append((code, code))

    def one(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    refused = "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in parts)
    return f"^[^{refused}]*$"


#: What :data:`PLAIN_TEXT` adds to a field's description in the OpenAPI document.
PLAIN_TEXT_RULE: Final = (
    "Plain text on one line: control, format and line-separator characters (Unicode "
    "Cc, Cf, Zl and Zp, among them CR, LF, tab, NUL, U+2028, bidi overrides and "
    "zero-width characters) are refused with 422, anywhere in the value, before "
    "surrounding spaces are stripped."
)


def plain_text(value: str) -> str:
    """Refuse control, format and line-separator characters and what ``text`` cannot store.

    A name or a note ends up in email headers, SMS bodies, logs and consoles:
    a line break there is an injection, a bidi override a spoof. Refused, not
    cleaned, so the person sees the 422 and what is stored is what was typed.
    """
    storable(value)
    char = first_control(value)
    if char is not None:
        found = f"U+{ord(char):04X}"
        raise ValueError(f"must not contain control, format or line-separator characters ({found})")
    return value


def _plain_text_before(value: object) -> object:
    # Before the string schema, so no stripping hides a trailing CR/LF; a
    # non-string is left to the string schema's own error.
    return plain_text(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class _PlainText:
    """``Annotated`` metadata: the value is :func:`plain_text`; the document says so."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_plain_text_before, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = plain_text_pattern()
        described = json_schema.get("description")
        json_schema["description"] = (
            f"{described} {PLAIN_TEXT_RULE}" if described else PLAIN_TEXT_RULE
        )
        return json_schema


#: Add to every name, relationship, note, reason and description:
#: ``Annotated[str, StringConstraints(...), PLAIN_TEXT]``.
PLAIN_TEXT: Final = _PlainText()


# --- chat messages ----------------------------------------------------------------

#: The longest chat message once trimmed (``actors.alert_messages.MAX_MESSAGE_CHARS``).
MAX_CHAT_CHARS: Final = 500

#: What :data:`CHAT_TEXT` adds to a field's description in the OpenAPI document.
CHAT_TEXT_RULE: Final = (
    "1 to 500 characters once surrounding whitespace is trimmed (the stored text is "
    "trimmed); line feeds are allowed, every other control, format or line-separator "
    "character (Unicode Cc, Cf, Zl, Zp: CR, tab, NUL, U+2028, bidi overrides, ...) is "
    "refused with 422."
)


def chat_text(value: str) -> str:
    """Refuse what :func:`plain_text` refuses, line feeds excepted (a chat message
    may have several lines)."""
    storable(value)
    for char in value:
        if char != "\n" and is_control(char):
            raise ValueError(
                f"must not contain control, format or line-separator characters "
                f"but line feeds (U+{ord(char):04X})"
            )
    return value


def _chat_text_before(value: object) -> object:
    return chat_text(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class _ChatText:
    """``Annotated`` metadata: the value is :func:`chat_text`; the document says so."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_chat_text_before, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = plain_text_pattern("\n")
        json_schema["description"] = CHAT_TEXT_RULE
        return json_schema


#: A chat message's text (``alert.message``, ``POST /alerts/{id}/messages``).
ChatText = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=MAX_CHAT_CHARS),
    _ChatText(),
]
