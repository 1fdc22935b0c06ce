"""Smart fields: `{{person.first_name}}`, `{{deal.title}}`, `{{organization.name}}`, ... rendered
by a sandboxed Jinja2 environment. Pure.

The sandbox refuses attribute access to anything unsafe (dunder attributes, functions of the
objects passed in); the records passed in are plain dicts of strings anyway. A field that is
missing (no such record, or the record has no value for it) fails the render with the field's
name, unless the template gives a fallback: `{{ person.first_name | default("there") }}`.
"""
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError


class MissingField(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(f"The smart field {field} has no value for this message; give it a value in the CRM "
                         f'or a fallback in the template, e.g. {{{{ {field} | default("...") }}}}.')
        self.field = field


class TemplateInvalid(ValueError):
    pass


class Record(dict):
    """A CRM record as the template sees it; knows its own name so a missing field is named in full."""

    def __init__(self, label: str, values: dict[str, str | None]) -> None:
        super().__init__({k: v for k, v in values.items() if v not in (None, "")})
        self.label = label


class _Missing(StrictUndefined):
    def _fail_with_undefined_error(self, *args, **kwargs):
        owner = self._undefined_obj
        name = f"{owner.label}.{self._undefined_name}" if isinstance(owner, Record) else self._undefined_name
        raise UndefinedError(f"field:{name}")

    __str__ = __iter__ = __len__ = __eq__ = __ne__ = __bool__ = __hash__ = _fail_with_undefined_error
    __getattr__ = __getitem__ = _fail_with_undefined_error


_HTML = SandboxedEnvironment(undefined=_Missing, autoescape=True)
_TEXT = SandboxedEnvironment(undefined=_Missing, autoescape=False)


def render(source: str, context: dict[str, Record], *, html: bool) -> str:
    env = _HTML if html else _TEXT
    try:
        return env.from_string(source).render(context)
    except UndefinedError as exc:
        message = str(exc)
        raise MissingField(message.removeprefix("field:") if message.startswith("field:") else message) from None
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"The template cannot be read (line {exc.lineno}): {exc.message}") from None
    except SecurityError as exc:
        raise TemplateInvalid(f"The template uses something templates may not: {exc}") from None


def person_record(name: str = "", emails: list[str] | None = None) -> Record:
    first, _, last = (name or "").strip().partition(" ")
    return Record("person", {"name": name, "first_name": first, "last_name": last.strip(),
                             "email": (emails or [None])[0]})


def deal_record(title: str = "", status: str = "", value: str | None = None) -> Record:
    return Record("deal", {"title": title, "status": status, "value": value})


def organization_record(name: str = "", domains: list[str] | None = None) -> Record:
    return Record("organization", {"name": name, "domain": (domains or [None])[0]})


def sender_record(email: str, name: str | None) -> Record:
    return Record("sender", {"email": email, "name": name, "first_name": (name or "").partition(" ")[0]})
