"""The provider catalog: every preset valid, every provider of MISSION.md §7 present, detection, endpoints."""
import re

import pytest

from maillink_schemas.accounts import AuthMethod, Security
from maillink_schemas.providers import MISSION_PROVIDERS, PROVIDERS, ProviderPreset, detect, preset

from maillink_ingest.domain.providers import UnknownProvider, auth_for, preset_for, resolve_endpoint

_HOST = re.compile(r"^[a-z0-9-]+(\.([a-z0-9-]+|\{domain\}))+$")


@pytest.mark.parametrize("provider_id", sorted(PROVIDERS))
def test_every_preset_round_trips_and_is_sane(provider_id):
    p = PROVIDERS[provider_id]
    assert ProviderPreset.model_validate_json(p.model_dump_json()) == p
    assert p.id == provider_id and p.name and p.attachment_limit_bytes >= 10 * 1024 * 1024
    for endpoint in (p.imap, p.smtp):
        if endpoint is not None:
            assert _HOST.match(endpoint.host), endpoint.host
            # Plain text is never a preset's choice: TLS, implicit or upgraded, always.
            assert endpoint.security in (Security.SSL, Security.STARTTLS)
    assert (p.imap is None) == (p.smtp is None)
    assert p.auth, "at least one way to log in"
    assert all(d == d.lower() and "@" not in d for d in p.domains + p.mx_suffixes)


def test_every_provider_of_the_mission_is_present():
    assert set(MISSION_PROVIDERS) <= set(PROVIDERS)
    assert len(MISSION_PROVIDERS) == 26  # 25 named providers and "any other account over IMAP with SSL/TLS"


def test_xoauth2_where_the_issue_asks_for_it():
    for pid in ("gmail", "microsoft365", "outlook"):
        assert AuthMethod.XOAUTH2 in PROVIDERS[pid].auth
    assert PROVIDERS["microsoft365"].auth == [AuthMethod.XOAUTH2]


def test_no_domain_belongs_to_two_presets():
    seen: dict[str, str] = {}
    for p in PROVIDERS.values():
        for d in p.domains:
            assert d not in seen, f"{d} in {seen.get(d)} and {p.id}"
            seen[d] = p.id


@pytest.mark.parametrize("email,expected", [
    ("Someone@GMAIL.com", "gmail"), ("a@googlemail.com", "gmail"),
    ("a@hotmail.com", "outlook"), ("a@outlook.com", "outlook"), ("a@live.com", "outlook"),
    ("a@icloud.com", "icloud"), ("a@me.com", "icloud"), ("a@mac.com", "icloud"),
    ("a@yahoo.com", "yahoo"), ("a@aol.com", "aol"), ("a@fastmail.com", "fastmail"),
    ("a@gmx.de", "gmx"), ("a@gmx.com", "gmx-com"), ("a@mail.ru", "mailru"), ("a@yandex.ru", "yandex"),
    ("a@126.com", "126"), ("a@163.com", "163"), ("a@yeah.net", "yeah"), ("a@qq.com", "qq"),
    ("a@aliyun.com", "aliyun"), ("a@139.com", "139"), ("a@soverin.net", "soverin"),
    ("a@unknown.example", "generic"),
])
def test_detection_by_domain(email, expected):
    assert detect(email).id == expected


@pytest.mark.parametrize("mx,expected", [
    (["aspmx.l.google.com.", "alt1.aspmx.l.google.com"], "gmail"),           # Google Workspace
    (["acme-com.mail.protection.outlook.com"], "microsoft365"),
    (["mx-aol.mail.gm0.yahoodns.net"], "aol"),                               # longest suffix beats yahoodns.net
    (["mta5.am0.yahoodns.net"], "yahoo"),
    (["in1-smtp.messagingengine.com"], "fastmail"),
    (["spool.mail.gandi.net"], "gandi"),
    (["mx.hover.com.cust.hostedemail.com"], "hover"),
    (["mx1.privateemail.com"], "namecheap"),
    (["mailstore1.secureserver.net"], "godaddy"),
    (["mx.yandex.net"], "yandex"),
    (["mxw.mxhichina.com"], "aliyun-enterprise"),
    (["mx.evilgoogle.com"], "generic"),                                      # a suffix, not a substring
    ([], "generic"),
])
def test_detection_by_mx(mx, expected):
    assert detect("someone@acme.example", mx).id == expected


def test_resolve_endpoint_fills_from_the_preset():
    assert resolve_endpoint("gmail", "a@acme.example", {}).model_dump() == {
        "host": "imap.gmail.com", "port": 993, "security": "ssl"}
    assert resolve_endpoint(None, "a@icloud.com", {}).host == "imap.mail.me.com"
    assert resolve_endpoint("bluehost", "a@Shop.Example", {}).host == "mail.shop.example"


def test_resolve_endpoint_overrides_win_and_self_hosted_needs_a_host():
    got = resolve_endpoint("gmail", "a@x.example", {"host": "127.0.0.1", "port": 10143, "security": "plain"})
    assert (got.host, got.port, got.security) == ("127.0.0.1", 10143, Security.PLAIN)
    assert resolve_endpoint("exchange", "a@corp.example", {"host": "mail.corp.example", "port": None}).port == 993
    with pytest.raises(ValueError, match="host"):
        resolve_endpoint("zimbra", "a@corp.example", {})
    with pytest.raises(ValueError, match="host"):
        resolve_endpoint(None, "a@unknown.example", {"host": None})
    with pytest.raises(UnknownProvider):
        resolve_endpoint("nope", "a@x.example", {})


def test_auth_defaults_to_xoauth2_only_where_nothing_else_is_accepted():
    assert auth_for(PROVIDERS["outlook"], None) == AuthMethod.XOAUTH2
    assert auth_for(PROVIDERS["gmail"], None) is None          # app password or token: the request says
    assert auth_for(PROVIDERS["gmail"], AuthMethod.XOAUTH2) == AuthMethod.XOAUTH2


def test_preset_for_and_fallbacks():
    assert preset_for("auto", "a@qq.com").id == "qq"
    assert preset(None).id == "generic" and preset("missing").id == "generic"
