"""What the gateway changes in dkimpy 1.1.8, and why: the same verdicts for less CPU.

dkimpy stays the verifier of record (it parses the signature, canonicalises, hashes and decides);
these replace nine of its module-level names (six kinds, below) with ones that give identical
results. Importing this module applies them (adapters/auth_checks.py does, once per process). Measured in process on
make bench-bcc's signed messages (2 KB, 2048-bit keys): 0.38 -> 0.19 ms per signed message;
tests/unit/test_bcc_dkim_speedups.py checks that stock dkimpy and these agree.

- The RSA check: dkimpy raises the signature to the public exponent with Python's `pow` (~0.18 ms
  for a 2048-bit key). OpenSSL, through `cryptography` (already a dependency), does the same check
  in ~0.02 ms. It is used only where its answer is dkimpy's by construction: SHA-256, a signature
  exactly as long as the modulus and smaller than it (OpenSSL refuses other lengths; dkimpy reduces
  them modulo n), a key OpenSSL accepts. PKCS#1 v1.5 verification in both compares the whole
  encoded block (00 01 FF.. 00 DigestInfo) byte for byte. Anything else goes to dkimpy's own code.
- The key record: dkimpy parses the TXT record's tags and the DER public key (a pure-Python ASN.1
  reader) for every message (~0.06 ms). The parse depends on nothing but the record's text, so it is
  kept per record text; the record itself is still looked up per message (the DNS cache keeps it
  for its TTL), so a changed or removed key takes effect exactly as before.
- Byte/integer conversions: a Python loop per byte over the 256-byte modulus, twice per signature;
  `int.to_bytes`/`from_bytes` give the same bytes.
- Canonicalisation: its whitespace regexes replace every single space of the body by a space (a
  few hundred substitutions per 2 KB body) and are looked up in `re`'s cache per header line. Here
  the same patterns run only where they can change something (a tab, two spaces in a row, a space
  before CRLF, a line break), compiled once.
- The b= tag removal (`dkim.RE_BTAG`, applied to the signature header before it is hashed): its
  pattern allows folding white space before every base64 character, `(?:FWS[a-zA-Z0-9+/=])*` with
  FWS = `(?:(?:\s*\r?\n)?\s+)?`, which costs sre a nested group per character (~0.04 ms for a
  2048-bit signature). As a language FWS is just `\s*`, and since what follows the repetition is
  optional, the greedy match ends at the last base64 character of the run of white space and base64
  after "=": `(?:[\s<b64>]*[<b64>])?` matches the same text (0.004 ms). Group 1, `[;\s]b FWS =`,
  is `[;\s]b\s*=` for the same reason. Compared on generated headers in the test.
- The message split (`dkim.rfc822_parse`, run on every DKIM(...) a check builds): it splits the whole
  message into lines with a regex and joins the body's lines again with CRLF (5.7 % of the gateway's
  samples under make bench-bcc's mix, ~10 KB messages). Only the header lines need splitting: the
  same header loop runs on the text up to the first empty line, and the body is the rest with each
  `\r?\n` made CRLF, which is the rest as it is when every LF already follows a CR. Compared on
  generated messages in the test.
"""
import functools
import re

import dkim
import dkim.canonicalization
import dkim.crypto
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

_stock_verify = dkim.crypto.RSASSA_PKCS1_v1_5_verify
_stock_evaluate_pk = dkim.evaluate_pk


def _int2str(n: int, length: int = -1) -> bytearray:
    """dkim.crypto.int2str, exactly (including keeping only the low `length` bytes), in C."""
    assert n >= 0
    if length < 0:
        length = max(1, (n.bit_length() + 7) // 8)
    return bytearray((n & ((1 << 8 * length) - 1)).to_bytes(length, "big"))


def _str2int(s) -> int:
    """dkim.crypto.str2int, exactly, in C."""
    return int.from_bytes(bytes(s), "big")


@functools.lru_cache(maxsize=1024)
def _openssl_key(exponent: int, modulus: int) -> rsa.RSAPublicKey | None:
    try:
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except (ValueError, TypeError):  # a key OpenSSL refuses (even exponent, tiny modulus): dkimpy decides
        return None


def rsassa_pkcs1_v1_5_verify(hash, signature: bytes, public_key: dict) -> bool:
    """dkim.crypto.RSASSA_PKCS1_v1_5_verify, with OpenSSL doing the RSA where the answers match."""
    modulus, exponent = public_key["modulus"], public_key["publicExponent"]
    key = _openssl_key(exponent, modulus) if hash.name.lower() == "sha256" else None
    if (key is None or len(signature) != (modulus.bit_length() + 7) // 8
            or int.from_bytes(signature, "big") >= modulus):
        return _stock_verify(hash, signature, public_key)
    try:
        key.verify(bytes(signature), hash.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def evaluate_pk(name, s):
    """dkim.evaluate_pk, kept per (name, record text): its result depends on nothing else. Failures
    (KeyFormatError) are not cached; they raise again each time, as before."""
    return _stock_evaluate_pk(name, s)


_TRAILING_WSP = re.compile(b"[\t ]+\r\n")
_WSP = re.compile(b"[\t ]+")


def _strip_trailing_whitespace(content: bytes) -> bytes:
    if b" \r\n" not in content and b"\t\r\n" not in content:  # nothing for the pattern to match
        return content
    return _TRAILING_WSP.sub(b"\r\n", content)


def _compress_whitespace(content: bytes) -> bytes:
    # Without a tab or two spaces in a row, every match is one space replaced by one space.
    if b"\t" not in content and b"  " not in content:
        return content
    return _WSP.sub(b" ", content)


_B64 = rb"a-zA-Z0-9+/="
_RE_BTAG = re.compile(rb"([;\s]b\s*=)(?:[\s" + _B64 + rb"]*[" + _B64 + rb"])?(?:\r?\n\Z)?")


def _unfold_header_value(content: bytes) -> bytes:
    # re.sub(b"\r?\n", b"", ...) removes each LF and the CR right before it: the CRLF pairs go first
    # (they cannot overlap), then the bare LFs. Every header value ends in CRLF, so the regex ran for
    # each header of every signed message (~16 us a message).
    return content.replace(b"\r\n", b"").replace(b"\n", b"")


_stock_rfc822_parse = dkim.rfc822_parse
_LINE_END = re.compile(rb"\r?\n")
_HEADER_NAME = re.compile(rb"([\x21-\x7e]+?):")


def _end_of_headers(message: bytes) -> int:
    """Where the body starts: just after the first empty line, as re.split(b"\r?\n") sees lines (at
    the very start, or right after a line's LF); -1 without one. (A regex search for it, with its
    alternation tried at every byte, cost 12 us a message.)"""
    if message[:1] == b"\n":
        return 1
    if message[:2] == b"\r\n":
        return 2
    crlf = message.find(b"\n\r\n")
    # A bare-LF empty line counts only before the CRLF one (not searched for through the whole body).
    lf = message.find(b"\n\n", 0, crlf + 1 if crlf >= 0 else len(message))
    if lf >= 0:
        return lf + 2
    return crlf + 3 if crlf >= 0 else -1


def _header_lines(lines: list[bytes]) -> list[list[bytes]]:
    """dkim.rfc822_parse's header loop, line for line, with its pattern compiled once (it was looked up
    in re's cache for every header line). `lines` end with the empty line."""
    headers = []
    for line in lines:
        if len(line) == 0:
            break
        if line[0] in ("\x09", "\x20", 0x09, 0x20):
            headers[-1][1] += line + b"\r\n"
        else:
            m = _HEADER_NAME.match(line)
            if m is not None:
                headers.append([m.group(1), line[m.end(0):] + b"\r\n"])
            elif line.startswith(b"From "):
                pass
            else:
                raise dkim.MessageFormatError("Unexpected characters in RFC822 header: %s" % line)
    return headers


def _rfc822_parse(message: bytes):
    """dkim.rfc822_parse, exactly, splitting only the header block into lines."""
    end = _end_of_headers(message) if isinstance(message, bytes) else -1
    if end < 0:  # no empty line: every line is a header line, and the stock split is as cheap
        return _stock_rfc822_parse(message)
    # The prefix ends with the empty line's own line break: its lines are the message's up to and
    # including the first empty one, so the loop reads the same header lines and stops there.
    headers = _header_lines(_LINE_END.split(message[:end]))
    body = message[end:]
    if body.count(b"\n") != body.count(b"\r\n"):  # a bare LF somewhere: made CRLF, as the join does
        body = _LINE_END.sub(b"\r\n", body)
    return headers, body


# (module, name, replacement). dkim/__init__.py imported the crypto and evaluate names into its own
# namespace: they are replaced where dkimpy looks them up.
REPLACEMENTS = [
    (dkim.crypto, "int2str", _int2str),
    (dkim.crypto, "str2int", _str2int),
    (dkim, "RSASSA_PKCS1_v1_5_verify", rsassa_pkcs1_v1_5_verify),
    (dkim, "evaluate_pk", evaluate_pk),
    (dkim.canonicalization, "strip_trailing_whitespace", _strip_trailing_whitespace),
    (dkim.canonicalization, "compress_whitespace", _compress_whitespace),
    (dkim.canonicalization, "unfold_header_value", _unfold_header_value),
    (dkim, "RE_BTAG", _RE_BTAG),
    (dkim, "rfc822_parse", _rfc822_parse),
]
# dkimpy's own, kept so a test can compare (tests/unit/test_bcc_dkim_speedups.py).
STOCK = [(module, name, getattr(module, name)) for module, name, _ in REPLACEMENTS]
STOCK_BY_NAME = [(name, value) for _, name, value in STOCK]


def apply(replacements=REPLACEMENTS) -> None:
    for module, name, function in replacements:
        setattr(module, name, function)


apply()
