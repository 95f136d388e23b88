#!/usr/bin/env python3
"""Calls keybroker from Python with the standard library only: ssl for mutual TLS, http.client.

    python3 keybroker_example.py https://kms.example:8443 cmxBackend.crt cmxBackend.key \\
        rootCA.crt [TLSv1.3|TLSv1.2]

The .crt/.key are this client's certificate and private key in PEM (from a .p12:
`openssl pkcs12 -in client.p12 -nodes`); rootCA.crt is the CA that signed the server's
certificate. The example encrypts a string bound to a context, decrypts it back, and shows
that another context is refused with the API's error code and request id.
"""
import base64
import http.client
import json
import ssl
import sys
import urllib.parse


def tls_context(cert, key, ca, version):
    """A client context presenting cert/key, trusting only ca, speaking exactly `version`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the server and its host name
    ctx.load_verify_locations(cafile=ca)
    ctx.load_cert_chain(certfile=cert, keyfile=key)
    v = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}[version]
    ctx.minimum_version = v
    ctx.maximum_version = v
    return ctx


class Keybroker:
    """One keep-alive connection to a keybroker server."""

    def __init__(self, url, ctx):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx, timeout=30)

    def call(self, key, action, body):
        """POSTs a JSON body; returns (status, answer as a dict)."""
        self.conn.request("POST", f"/v1/keys/{key}/{action}", body=json.dumps(body),
                          headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")

    def tls_version(self):
        return self.conn.sock.version() if self.conn.sock else None


def b64(b):
    return base64.b64encode(b).decode()


def main(argv):
    if len(argv) < 5:
        print("usage: keybroker_example.py URL CERT KEY CA_PEM [TLSv1.3|TLSv1.2]", file=sys.stderr)
        return 2
    url, cert, key, ca = argv[1:5]
    version = argv[5] if len(argv) > 5 else "TLSv1.3"
    kb = Keybroker(url, tls_context(cert, key, ca, version))
    context = b64(b"tenant=7")
    plaintext = "hello from python"

    status, enc = kb.call("default", "encrypt",
                          {"plaintext": b64(plaintext.encode()), "context": context})
    print("tls", kb.tls_version())
    if status != 200:
        raise SystemExit(f"encrypt answered {status}: {enc}")
    token = enc["ciphertext"]
    print("encrypt ok", token)

    status, dec = kb.call("default", "decrypt", {"ciphertext": token, "context": context})
    if status != 200:
        raise SystemExit(f"decrypt answered {status}: {dec}")
    back = base64.b64decode(dec["plaintext"]).decode()
    print("decrypt ok", back)

    # Another context: the API refuses it with a code and the request's id.
    status, bad = kb.call("default", "decrypt", {"ciphertext": token, "context": b64(b"tenant=8")})
    err = bad.get("error", {})
    print(f"wrong context refused: {status} {err.get('code')} request_id {err.get('request_id')}")
    return 0 if back == plaintext and status == 400 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
