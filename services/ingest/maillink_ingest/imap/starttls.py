"""STARTTLS (RFC 3501 6.2.1) for aioimaplib 2.0.3, which lists the command but has no way to
upgrade its socket. The command runs through aioimaplib's own queue; on OK the transport is
upgraded in place with asyncio's start_tls (the protocol object stays, so pending state and the
connection-lost hook survive), and the capabilities are read again: RFC 3501 says the ones sent
before TLS must be discarded (a man in the middle could have stripped LOGINDISABLED or added some).
"""
import asyncio
import ssl

import aioimaplib


async def starttls(client: aioimaplib.IMAP4, context: ssl.SSLContext, host: str) -> aioimaplib.Response:
    protocol = client.protocol
    response = await protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop))
    if response.result != "OK":
        return response
    transport = await asyncio.get_running_loop().start_tls(protocol.transport, protocol, context,
                                                           server_hostname=host)
    protocol.transport = transport
    protocol.capabilities = set()
    await protocol.capability()
    return response
