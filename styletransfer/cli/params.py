"""Click types for list-valued flags: the parsers of :mod:`styletransfer.parsing`, their errors as usage errors."""

from __future__ import annotations

import click

from ..errors import UsageError
from ..parsing import parse_float_list, parse_int_list, parse_name_list


class ListParam(click.ParamType):
    """A click type wrapping one of the parsers above, so errors come back as usage errors."""

    def __init__(self, parser, name: str, **kwargs) -> None:
        self.parser, self.name, self.kwargs = parser, name, kwargs

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parser(value, name=f"--{param.name.replace('_', '-')}" if param else self.name,
                               **self.kwargs)
        except UsageError as error:
            self.fail(str(error), param, ctx)


FLOATS = ListParam(parse_float_list, "floats", minimum=0.0)
SIGNED_FLOATS = ListParam(parse_float_list, "floats")
SIZES = ListParam(parse_int_list, "sizes", minimum=16)
STEPS = ListParam(parse_int_list, "steps", minimum=1)
NAMES = ListParam(parse_name_list, "names")
