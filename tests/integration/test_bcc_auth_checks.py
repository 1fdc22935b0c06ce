"""The gateway's SPF/DKIM/DMARC checker against a real DNS server (a private dnsmasq on loopback):
DMARC is evaluated on the From domains the gateway parsed itself (no second header parse), and of
several From domains the one under the strictest policy decides, as authheaders.check_dmarc does."""
import pytest

from maillink_bcc_gateway.adapters.auth_checks import AuthChecker
from maillink_devtools.bcc_harness import dkim_key, free_port, start_dns

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    key = dkim_key("sel", "signed.test")
    records = {
        "good.test": "v=spf1 ip4:127.0.0.1 -all", "_dmarc.good.test": "v=DMARC1; p=reject",
        "other.test": "v=spf1 ip4:192.0.2.10 -all", "_dmarc.other.test": "v=DMARC1; p=quarantine",
        "signed.test": "v=spf1 ip4:192.0.2.10 -all", "_dmarc.signed.test": "v=DMARC1; p=reject",
        key.record_name: key.record,
    }
    server = start_dns(records, ["test"], tmp_path_factory.mktemp("dns") / "dnsmasq.log")
    yield server, key
    server.stop()


def message(sender: str) -> bytes:
    return (f"From: {sender}\r\nTo: jan@acme.example\r\nSubject: s\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n").encode()


async def test_aligned_spf_passes_dmarc_under_its_policy(dns_server):
    checker = AuthChecker("127.0.0.1", dns_server[0].port, 2)
    results = await checker.check(message("a@good.test"), "127.0.0.1", "a@good.test", "mua", ["good.test"])
    assert (results.spf, results.dkim, results.dmarc, results.dmarc_policy) == ("pass", "none", "pass", "reject")


async def test_a_domain_that_fails_both_fails_dmarc_with_its_policy(dns_server):
    checker = AuthChecker("127.0.0.1", dns_server[0].port, 2)
    results = await checker.check(message("a@other.test"), "127.0.0.1", "a@other.test", "mua", ["other.test"])
    assert (results.domain, results.spf, results.dmarc, results.dmarc_policy) == ("other.test", "fail", "fail",
                                                                                  "quarantine")


async def test_of_several_from_domains_the_strictest_policy_decides(dns_server):
    checker = AuthChecker("127.0.0.1", dns_server[0].port, 2)
    both = message("a@other.test, a@good.test")
    # SPF fails (127.0.0.1 may not send for other.test): both domains fail; good.test's p=reject, the
    # stricter, names the verdict although other.test (p=quarantine) comes first.
    results = await checker.check(both, "127.0.0.1", "a@other.test", "mua", ["other.test", "good.test"])
    assert (results.domain, results.dmarc, results.dmarc_policy) == ("other.test", "fail", "reject")
    # SPF passes for good.test: it aligns (the second domain is judged on the envelope's own domain,
    # not on a result a previous domain's evaluation rewrote).
    results = await checker.check(both, "127.0.0.1", "a@good.test", "mua", ["other.test", "good.test"])
    assert (results.spf, results.dmarc, results.dmarc_policy) == ("pass", "pass", "reject")


async def test_a_dkim_signature_aligns_dmarc_and_a_changed_body_fails_it(dns_server):
    server, key = dns_server
    checker = AuthChecker("127.0.0.1", server.port, 2)
    signed = key.sign(message("a@signed.test"))
    results = await checker.check(signed, "127.0.0.1", "a@signed.test", "mua", ["signed.test"])
    assert (results.spf, results.dkim, results.dmarc) == ("fail", "pass", "pass")
    results = await checker.check(signed.replace(b"body", b"b0dy"), "127.0.0.1", "a@signed.test", "mua",
                                  ["signed.test"])
    assert (results.dkim, results.dmarc, results.dmarc_policy) == ("fail", "fail", "reject")


async def test_a_verdict_is_reused_only_for_the_same_inputs_and_until_its_records_expire(tmp_path):
    # The checker's clock is stepped (the DNS cache and the verdict caches read it), so the TTL
    # passes without waiting; the zone itself is really changed: dnsmasq is restarted on its port.
    now = [1000.0]
    first = {"moving.test": "v=spf1 ip4:127.0.0.1 -all", "_dmarc.moving.test": "v=DMARC1; p=reject",
             "other.test": "v=spf1 ip4:192.0.2.10 -all", "_dmarc.other.test": "v=DMARC1; p=quarantine"}
    server = start_dns(first, ["test"], tmp_path / "first.log", ttl=300)
    checker = AuthChecker("127.0.0.1", server.port, 2, clock=lambda: now[0])

    async def verdict(ip: str, sender: str = "a@moving.test") -> tuple[str, str, str]:
        domain = sender.rpartition("@")[2]
        results = await checker.check(message(sender), ip, sender, "mua", [domain])
        return results.spf, results.dmarc, results.dmarc_policy

    try:
        assert await verdict("127.0.0.1") == ("pass", "pass", "reject")
        assert await verdict("127.0.0.1") == ("pass", "pass", "reject")  # now from the verdict caches
        # Another IP, another domain: their own verdicts, never the cached pass.
        assert await verdict("127.0.0.2") == ("fail", "fail", "reject")
        assert await verdict("127.0.0.1", "a@other.test") == ("fail", "fail", "quarantine")
        server.stop()
        changed = {"moving.test": "v=spf1 ip4:127.0.0.2 -all", "_dmarc.moving.test": "v=DMARC1; p=quarantine"}
        server = start_dns(changed, ["test"], tmp_path / "changed.log", port=server.port, ttl=300)
        now[0] += 299  # within the records' TTL: the old records' verdicts still stand
        assert await verdict("127.0.0.1") == ("pass", "pass", "reject")
        assert await verdict("127.0.0.2") == ("fail", "fail", "reject")
        now[0] += 2  # past it: the changed records decide
        assert await verdict("127.0.0.1") == ("fail", "fail", "quarantine")
        assert await verdict("127.0.0.2") == ("pass", "pass", "quarantine")
    finally:
        server.stop()


async def test_a_verdict_built_on_a_failed_lookup_is_not_kept(tmp_path):
    port = free_port()  # nothing answers there yet: the lookups time out
    checker = AuthChecker("127.0.0.1", port, 0.5)
    results = await checker.check(message("a@good.test"), "127.0.0.1", "a@good.test", "mua", ["good.test"])
    assert (results.spf, results.dmarc) == ("temperror", "temperror")
    server = start_dns({"good.test": "v=spf1 ip4:127.0.0.1 -all", "_dmarc.good.test": "v=DMARC1; p=reject"},
                       ["test"], tmp_path / "dns.log", port=port)
    try:  # no TTL has passed: only a kept verdict could still say temperror
        results = await checker.check(message("a@good.test"), "127.0.0.1", "a@good.test", "mua", ["good.test"])
        assert (results.spf, results.dmarc, results.dmarc_policy) == ("pass", "pass", "reject")
    finally:
        server.stop()
