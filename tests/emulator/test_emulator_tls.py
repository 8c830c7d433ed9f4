"""End-to-end sanity over real TLS on a local port, with real hostnames mapped to it (no browser):
the certificate names exactly the served hosts, a customer-subdomain API host fails the name check,
a full login -> consent -> callback -> token -> API round trip works, and rules can drop connections."""
from __future__ import annotations

import ssl
import threading
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from emukit import Page, Pkce, auth_params
from emulator.server import start
from core.network import Network, make_client


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    emu = start(tmp_path_factory.mktemp("emulator-tls"))
    yield emu
    emu.stop()


@pytest.fixture
def client(running):
    addr = running.base_address
    net = Network(host_map={"*.datadoghq.com": addr, "*.datadoghq.eu": addr, "*.ddog-gov.com": addr},
                  ca_bundle=running.tls.ca_pem)
    with make_client(net) as c:
        yield c
    running.store.reset()
    running.app.state.rules.clear()


def test_ca_written_to_state_dir(running):
    assert running.tls.ca_pem.exists() and running.tls.ca_pem.name == "ca.pem"
    assert running.tls.ca_pem.read_text().startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("url", ["https://api.datadoghq.com/api/v2/oauth2/.well-known/sites",
                                 "https://api.datadoghq.eu/api/v2/oauth2/.well-known/sites",
                                 "https://api.us2.ddog-gov.com/api/v2/oauth2/.well-known/sites"])
def test_well_known_sites_over_tls(client, url):
    resp = client.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/vnd.api+json")
    sites = resp.json()["data"]["attributes"]["sites"]
    assert ("app.datadoghq.eu" in sites) is ("ddog-gov" not in url)


def test_customer_subdomain_api_host_fails_the_name_check(client):
    with pytest.raises(httpx.ConnectError) as info:
        client.get("https://api.bigcorp.datadoghq.eu/api/v1/validate")
    assert "hostname" in str(info.value).lower() or "match" in str(info.value).lower()
    # the connection pool for the good name is unaffected
    assert client.get("https://api.datadoghq.eu/api/v2/oauth2/.well-known/sites").status_code == 200


def test_wildcard_is_not_in_the_certificate(client):
    with pytest.raises(httpx.ConnectError):
        client.get("https://www.datadoghq.com/")


def test_served_name_but_foreign_host_header_is_421(running):
    with httpx.Client(verify=ssl.create_default_context(cafile=str(running.tls.ca_pem))) as c:
        resp = c.get(f"https://127.0.0.1:{running.port}/api/v1/validate",
                     headers={"Host": "api.bigcorp.datadoghq.eu"}, extensions={"sni_hostname": "api.datadoghq.com"})
    assert resp.status_code == 421 and resp.json()["errors"][0].startswith("Misdirected request")


def test_full_round_trip_over_tls(client, running):
    store = running.store
    c = next(x for x in store.clients.values() if x.site == "EU1" and x.key == "test")
    user = next(u for u in store.users.values() if u.site == "EU1" and u.key == "developer")
    pkce = Pkce.new()
    params = auth_params(c, pkce=pkce, state="tls-state")
    r = client.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=params)
    assert r.status_code == 302 and r.headers["location"].startswith("/account/login")
    nxt = dict(parse_qsl(urlsplit(r.headers["location"]).query))["next"]
    r = client.post("https://app.datadoghq.eu/account/login",
                    data={"username": user.email, "password": user.password, "next": nxt})
    assert r.status_code == 303 and "dogweb" in client.cookies
    r = client.get("https://app.datadoghq.eu" + r.headers["location"])
    page = Page(r.text)
    assert page.h1 == f"Authorize {c.name}" and r.headers["x-frame-options"] == "DENY"
    form = page.forms[0]
    r = client.post("https://app.datadoghq.eu/oauth2/v1/authorize", data={**form.fields, "decision": "authorize"})
    assert r.status_code == 302
    cb = dict(parse_qsl(urlsplit(r.headers["location"]).query))
    assert cb["state"] == "tls-state" and cb["domain"] == "datadoghq.eu"
    token = client.post(f"https://api.{cb['domain']}/oauth2/v1/token", data={
        "grant_type": "authorization_code", "client_id": c.id, "client_secret": c.secret, "code": cb["code"],
        "redirect_uri": c.redirect_uris[0], "code_verifier": pkce.verifier})
    assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
    access = token.json()["access_token"]
    me = client.get(f"https://api.{cb['domain']}/api/v2/users/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200 and me.json()["data"]["attributes"]["email"] == user.email
    assert "x-ratelimit-limit" in me.headers


def test_concurrent_double_redemption_over_sockets(client, running):
    c = next(x for x in running.store.clients.values() if x.site == "US3" and x.key == "test")
    pkce = Pkce.new()
    minted = client.post("https://api.us3.datadoghq.com/_emulator/codes",
                         json={"site": "US3", "client_id": c.id, "code_challenge": pkce.challenge, "count": 3})
    assert minted.status_code == 201
    net = client._transport.network
    clients = [make_client(net) for _ in range(3)]
    for own in clients:  # warm the connections, so the race is about the requests, not the handshakes
        own.get("https://api.us3.datadoghq.com/api/v2/oauth2/.well-known/sites")
    try:
        for code in minted.json()["codes"]:
            body = {"grant_type": "authorization_code", "client_id": c.id, "client_secret": c.secret, "code": code,
                    "redirect_uri": c.redirect_uris[0], "code_verifier": pkce.verifier}
            results = []
            barrier = threading.Barrier(len(clients))

            def redeem(own):
                barrier.wait()
                results.append(own.post("https://api.us3.datadoghq.com/oauth2/v1/token", data=body).status_code)
            threads = [threading.Thread(target=redeem, args=(own,)) for own in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [200, 400, 400]
    finally:
        for own in clients:
            own.close()


def test_drop_rule_cuts_the_connection(client):
    rule = {"match": {"host": "api.datadoghq.com", "path": "^/api/v1/validate$"}, "action": {"drop": True},
            "times": 1}
    assert client.post("https://api.datadoghq.com/_emulator/rules", json=rule).status_code == 201
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get("https://api.datadoghq.com/api/v1/validate")
    assert client.get("https://api.datadoghq.com/api/v1/validate").status_code == 403
    rules = client.get("https://api.datadoghq.com/_emulator/rules").json()["rules"]
    assert rules[0]["hits"] == 1


def test_delay_rule_over_tls(client):
    rule = {"match": {"path": "well-known"}, "action": {"delay_ms": 300}, "times": 1}
    client.post("https://api.datadoghq.com/_emulator/rules", json=rule)
    resp = client.get("https://api.datadoghq.com/api/v2/oauth2/.well-known/sites")
    assert resp.status_code == 200 and resp.elapsed.total_seconds() >= 0.3
    client.post("https://api.datadoghq.com/_emulator/rules", json={**rule, "action": {"delay_ms": 800}})
    with pytest.raises(httpx.ReadTimeout):
        client.get("https://api.datadoghq.com/api/v2/oauth2/.well-known/sites", timeout=0.3)
