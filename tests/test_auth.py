"""Credentials: API keys, static tokens, environment variables, and the real google-auth ADC flows
(authorized_user and service account) against the emulator's OAuth endpoint; plus secrets never
leaking into reprs, errors, logs or tracebacks."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_TOKEN, API_KEY, PROJECT
from mistral_magic.client import Mistral, MistralGCP
from mistral_magic.emulator import EmulatorHandle
from mistral_magic.errors import APIConnectionError, ConfigError, MistralError, SDKError
from mistral_magic.utils import BackoffStrategy, RetryConfig

pytestmark = pytest.mark.usefixtures("loopback_only")
MSGS = [{"role": "user", "content": "Name a painter."}]
VMODEL = "mistral-small-2503"
MMODEL = "mistral-small-latest"
FAST = RetryConfig(
    "backoff", BackoffStrategy(1, 10, 2.0, 10_000, jitter_ms=0), True, max_attempts=3
)
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_TOKEN = "1//refresh-token-secret-0123456789"
CLIENT_SECRET = "client-secret-0123456789"


def bearer_of(entry: dict[str, Any]) -> str:
    return str(entry["headers"]["authorization"])


def issued(emulator: EmulatorHandle) -> list[str]:
    return [e["issued"] for e in emulator.token_requests if "issued" in e]


@pytest.fixture
def user_adc(tmp_path: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An authorized_user ADC file whose token endpoint is the emulator."""
    path = tmp_path / "adc.json"
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "client-id.apps.googleusercontent.com",
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "token_uri": emulator.url + "/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    # google-auth ignores an authorized_user file's token_uri and always uses Google's
    import google.oauth2.credentials

    monkeypatch.setattr(
        google.oauth2.credentials, "_GOOGLE_OAUTH2_TOKEN_ENDPOINT", emulator.url + "/token"
    )
    return path


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def sa_adc(
    tmp_path: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, rsa_pem: str
) -> Path:
    """A service-account key file (project ``sa-project``) whose token endpoint is the emulator."""
    path = tmp_path / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "sa-project",
                "private_key_id": "0123456789abcdef",
                "private_key": rsa_pem,
                "client_email": "runner@sa-project.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": emulator.url + "/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return path


# --------------------------------------------------------------------------- static credentials


def test_static_token_and_api_key(emulator: EmulatorHandle) -> None:
    v = MistralGCP(project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=emulator.url)
    m = Mistral(api_key=API_KEY, server_url=emulator.url)
    v.chat.complete(model=VMODEL, messages=MSGS)
    m.chat.complete(model=MMODEL, messages=MSGS)
    first, second = emulator.requests
    assert bearer_of(first) == f"Bearer {ACCESS_TOKEN}"
    assert bearer_of(second) == f"Bearer {API_KEY}"
    assert emulator.token_requests == []
    v.close()
    m.close()


def test_bearer_prefix_not_doubled(emulator: EmulatorHandle) -> None:
    v = MistralGCP(
        project_id=PROJECT, access_token="Bearer " + ACCESS_TOKEN, server_url=emulator.url
    )
    v.chat.complete(model=VMODEL, messages=MSGS)
    assert bearer_of(emulator.requests[0]) == f"Bearer {ACCESS_TOKEN}"


def test_environment_variables(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("MISTRAL_API_KEY", API_KEY)
    v = MistralGCP(server_url=emulator.url)
    m = Mistral(server_url=emulator.url)
    v.chat.complete(model=VMODEL, messages=MSGS)
    m.chat.complete(model=MMODEL, messages=MSGS)
    first, second = emulator.requests
    assert "/projects/env-project/" in first["path"]
    assert bearer_of(first) == f"Bearer {ACCESS_TOKEN}"
    assert bearer_of(second) == f"Bearer {API_KEY}"
    # arguments win over the environment
    MistralGCP(project_id="arg-project", server_url=emulator.url).chat.complete(
        model=VMODEL, messages=MSGS
    )
    assert "/projects/arg-project/" in emulator.requests[-1]["path"]


def test_missing_project_with_static_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="project_id must be provided"):
        MistralGCP(access_token=ACCESS_TOKEN).chat.complete(model=VMODEL, messages=MSGS)
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", ACCESS_TOKEN)
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        MistralGCP().chat.complete(model=VMODEL, messages=MSGS)


def test_no_credentials_at_all(emulator: EmulatorHandle) -> None:
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    with pytest.raises(ConfigError) as info:
        client.chat.complete(model=VMODEL, messages=MSGS)
    text = str(info.value)
    assert "gcloud auth application-default login" in text
    assert "GOOGLE_APPLICATION_CREDENTIALS" in text and "GOOGLE_OAUTH_ACCESS_TOKEN" in text
    with pytest.raises(ConfigError, match="MISTRAL_API_KEY"):
        Mistral(server_url=emulator.url).models.list()
    assert emulator.requests == []


def test_no_credentials_async(emulator: EmulatorHandle) -> None:
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)

    async def main() -> None:
        with pytest.raises(ConfigError, match="gcloud auth"):
            await client.chat.stream_async(model=VMODEL, messages=MSGS)

    asyncio.run(main())


# --------------------------------------------------------------------------- authorized_user ADC


def test_user_adc_token_fetched_once_and_reused(user_adc: Path, emulator: EmulatorHandle) -> None:
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    for _ in range(3):
        client.chat.complete(model=VMODEL, messages=MSGS)
    list(client.chat.stream(model=VMODEL, messages=MSGS))
    (call,) = emulator.token_requests
    assert call["form"]["grant_type"] == "refresh_token"
    assert call["form"]["refresh_token"] == REFRESH_TOKEN
    token = call["issued"]
    assert token.startswith("emu-token-")
    assert {bearer_of(r) for r in emulator.requests} == {f"Bearer {token}"}
    client.close()


def test_user_adc_without_project_needs_one(user_adc: Path, emulator: EmulatorHandle) -> None:
    with pytest.raises(ConfigError, match="project_id must be provided"):
        MistralGCP(server_url=emulator.url).chat.complete(model=VMODEL, messages=MSGS)


def test_user_adc_project_from_environment(
    user_adc: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    client = MistralGCP(server_url=emulator.url)
    client.chat.complete(model=VMODEL, messages=MSGS)
    assert "/projects/env-project/" in emulator.requests[0]["path"]
    assert client.project_id == "env-project"


def test_expired_token_is_refreshed(user_adc: Path, emulator: EmulatorHandle) -> None:
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    client.chat.complete(model=VMODEL, messages=MSGS)
    creds = client._tokens()._credentials  # type: ignore[attr-defined]
    creds.expiry = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None
    ) - datetime.timedelta(hours=1)
    assert not creds.valid
    client.chat.complete(model=VMODEL, messages=MSGS)
    client.chat.complete(model=VMODEL, messages=MSGS)
    first, second = issued(emulator)
    assert first != second
    assert [bearer_of(r) for r in emulator.requests] == [
        f"Bearer {first}",
        f"Bearer {second}",
        f"Bearer {second}",
    ]


def test_short_lived_token_is_refreshed(user_adc: Path, emulator: EmulatorHandle) -> None:
    """A token inside google-auth's expiry margin counts as expired: refreshed per call."""
    emulator.set_oauth(expires_in=10)
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    client.chat.complete(model=VMODEL, messages=MSGS)
    client.chat.complete(model=VMODEL, messages=MSGS)
    assert len(issued(emulator)) == 2


def test_401_refreshes_once_then_succeeds(user_adc: Path, emulator: EmulatorHandle) -> None:
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    client.chat.complete(model=VMODEL, messages=MSGS)
    (old,) = issued(emulator)
    emulator.inject("reject_token", token=old)  # the service no longer accepts it
    response = client.chat.complete(model=VMODEL, messages=MSGS, retries=FAST)
    assert response.choices[0].message.content
    old_again, new = issued(emulator)
    assert old_again == old and new != old
    assert [bearer_of(r) for r in emulator.requests] == [
        f"Bearer {old}",
        f"Bearer {old}",
        f"Bearer {new}",
    ]
    # streams too
    emulator.inject("reject_token", token=new)
    assert list(client.chat.stream(model=VMODEL, messages=MSGS))
    assert len(issued(emulator)) == 3


def test_401_refreshes_only_once(user_adc: Path, emulator: EmulatorHandle) -> None:
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    emulator.inject("status", times=5, status=401)
    with pytest.raises(SDKError) as info:
        client.chat.complete(model=VMODEL, messages=MSGS, retries=FAST)
    assert info.value.status_code == 401
    assert len(emulator.requests) == 2
    assert len(issued(emulator)) == 2  # the first token, then one refresh


def test_401_refresh_async(user_adc: Path, emulator: EmulatorHandle) -> None:
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)

    async def main() -> None:
        await client.chat.complete_async(model=VMODEL, messages=MSGS)
        emulator.inject("reject_token", token=issued(emulator)[0])
        stream = await client.chat.stream_async(model=VMODEL, messages=MSGS)
        assert [e async for e in stream]
        await client.aclose()

    asyncio.run(main())
    assert len(issued(emulator)) == 2
    assert len(emulator.requests) == 3


def test_refresh_failure_is_a_config_error(
    user_adc: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    data = json.loads(user_adc.read_text())
    data["refresh_token"] = ""  # the emulator refuses the grant
    data["token_uri"] = emulator.url + "/token"
    user_adc.write_text(json.dumps(data))
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    with pytest.raises(ConfigError) as info:
        client.chat.complete(model=VMODEL, messages=MSGS)
    assert "gcloud auth application-default login" in str(info.value)
    assert CLIENT_SECRET not in str(info.value)
    assert emulator.requests == []


def test_bare_token_credentials_are_not_refreshed_after_401(emulator: EmulatorHandle) -> None:
    """Credentials without a refresh token cannot renew: the 401 is reported as is."""
    import google.oauth2.credentials

    creds = google.oauth2.credentials.Credentials(token="ya29.bare-token-0123456789")
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url, credentials=creds)
    emulator.inject("reject_token", token="ya29.bare-token-0123456789")
    with pytest.raises(SDKError) as info:
        client.chat.complete(model=VMODEL, messages=MSGS, retries=FAST)
    assert info.value.status_code == 401
    assert len(emulator.requests) == 1
    assert emulator.token_requests == []


def test_async_refresh_runs_off_the_event_loop(user_adc: Path, emulator: EmulatorHandle) -> None:
    emulator.set_oauth(delay=0.5)
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    main_thread = threading.get_ident()
    refresh_threads: list[int] = []

    async def main() -> int:
        source = await client._tokens_async()
        creds = source._credentials  # type: ignore[attr-defined]
        real_refresh = creds.refresh

        def spy(request: Any) -> None:
            refresh_threads.append(threading.get_ident())
            real_refresh(request)

        creds.refresh = spy
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await client.chat.complete_async(model=VMODEL, messages=MSGS)
        done = True
        await task
        await client.aclose()
        return ticks

    ticks = asyncio.run(main())
    assert refresh_threads and main_thread not in refresh_threads
    assert ticks >= 5  # the loop kept running during the 0.5 s token request
    assert len(issued(emulator)) == 1


def test_adc_lookup_runs_off_the_event_loop(
    user_adc: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mistral_magic.auth as auth

    threads: list[int] = []
    real = auth._application_default_credentials

    def spy() -> Any:
        threads.append(threading.get_ident())
        return real()

    monkeypatch.setattr(auth, "_application_default_credentials", spy)
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    asyncio.run(client.chat.complete_async(model=VMODEL, messages=MSGS))
    assert threads and threads[0] != threading.get_ident()


def test_concurrent_expiry_refreshes_once(user_adc: Path, emulator: EmulatorHandle) -> None:
    """Many requests finding the token expired at once wait for a single refresh."""
    emulator.set_oauth(delay=0.2)
    client = MistralGCP(project_id=PROJECT, server_url=emulator.url)

    async def main() -> None:
        await asyncio.gather(
            *(client.chat.complete_async(model=VMODEL, messages=MSGS) for _ in range(10))
        )
        await client.aclose()

    asyncio.run(main())
    assert len(issued(emulator)) == 1
    assert len(emulator.requests) == 10


# --------------------------------------------------------------------------- service account


def test_service_account_key_file(sa_adc: Path, emulator: EmulatorHandle) -> None:
    client = MistralGCP(server_url=emulator.url)  # project from the key file
    client.chat.complete(model=VMODEL, messages=MSGS)
    client.chat.complete(model=VMODEL, messages=MSGS)
    (call,) = emulator.token_requests
    assert call["form"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = call["claims"]
    assert claims["iss"] == "runner@sa-project.iam.gserviceaccount.com"
    assert claims["aud"]  # google-auth's default token endpoint; the file's token_uri is used
    assert CLOUD_PLATFORM in claims["scope"].split()
    token = call["issued"]
    assert all(bearer_of(r) == f"Bearer {token}" for r in emulator.requests)
    assert all("/projects/sa-project/" in r["path"] for r in emulator.requests)
    assert client.project_id == "sa-project"


def test_service_account_401_refresh(sa_adc: Path, emulator: EmulatorHandle) -> None:
    client = MistralGCP(server_url=emulator.url)
    client.chat.complete(model=VMODEL, messages=MSGS)
    emulator.inject("reject_token", token=issued(emulator)[0])
    client.chat.complete(model=VMODEL, messages=MSGS)
    assert len(issued(emulator)) == 2
    assert len(emulator.requests) == 3


# --------------------------------------------------------------------------- secrets


def _texts_of(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for attr in ("message", "hint", "body"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            out.append(value)
    return out


def _assert_clean(texts: list[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text[:300])


def test_secrets_never_leak(
    user_adc: Path, emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    v = MistralGCP(project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=emulator.url)
    m = Mistral(api_key=API_KEY, server_url=emulator.url)
    adc = MistralGCP(project_id=PROJECT, server_url=emulator.url)
    texts: list[str] = []

    v.chat.complete(model=VMODEL, messages=MSGS)
    list(m.chat.stream(model=MMODEL, messages=MSGS))
    adc.chat.complete(model=VMODEL, messages=MSGS)
    (adc_token,) = issued(emulator)
    emulator.inject("reject_token", token=adc_token)
    adc.chat.complete(model=VMODEL, messages=MSGS, retries=FAST)
    new_token = issued(emulator)[-1]
    secrets = (ACCESS_TOKEN, API_KEY, adc_token, new_token, REFRESH_TOKEN, CLIENT_SECRET)
    texts += [str(c) for c in (v, m, adc)] + [repr(c) for c in (v, m, adc)]
    texts += [repr(adc._tokens()), repr(v._tokens()), repr(m._tokens())]

    # 401 bodies that echo the credential
    for client, model, secret in (
        (m, MMODEL, API_KEY),
        (v, VMODEL, ACCESS_TOKEN),
        (adc, VMODEL, new_token),
    ):
        emulator.inject(
            "status",
            times=2 if client is adc else 1,
            status=401,
            message=f"invalid credential {secret} (Bearer {secret})",
        )
        with pytest.raises(SDKError) as info:
            client.chat.complete(model=model, messages=MSGS, retries=FAST)
        texts += _texts_of(info.value)
        emulator.inject("status", status=400, message=f"bad key {secret}")
        with pytest.raises(SDKError) as info:
            client.chat.stream(model=model, messages=MSGS)
        texts += _texts_of(info.value)
    # a stream error echoing the key
    emulator.inject("stream_error", after_chunks=1, message=f"leaked {API_KEY}")
    with pytest.raises(MistralError) as info2:
        list(m.chat.stream(model=MMODEL, messages=MSGS))
    texts += _texts_of(info2.value)
    # connection errors, with the credential in server_url's user info for good measure
    dead = MistralGCP(
        project_id=PROJECT, access_token=ACCESS_TOKEN, server_url="http://127.0.0.1:9"
    )
    with pytest.raises(APIConnectionError) as info3:
        dead.chat.complete(model=VMODEL, messages=MSGS, retries=FAST)
    texts += _texts_of(info3.value)
    assert emulator.faults == []

    secrets += tuple(issued(emulator))  # tokens refreshed after the 401s
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(r.args) for r in caplog.records]
    assert caplog.records  # logging was captured at all
    _assert_clean(texts, *secrets)
    for client in (v, m, adc, dead):
        client.close()


# --------------------------------------------------------------------------- the emulator's /token


def test_emulator_token_endpoint(emulator: EmulatorHandle) -> None:
    import httpx

    with httpx.Client(base_url=emulator.url) as http:
        ok = http.post(
            "/token?expires_in=60",
            data={"grant_type": "refresh_token", "refresh_token": "r", "client_id": "c"},
        )
        assert ok.status_code == 200
        body = ok.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 60
        assert body["access_token"].startswith("emu-token-")
        assert http.post("/token", data={"grant_type": "password"}).status_code == 400
        missing = http.post("/token", data={"grant_type": "refresh_token", "client_id": "c"})
        assert missing.status_code == 400 and "refresh_token" in missing.text
        bad_jwt = http.post(
            "/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        )
        assert bad_jwt.status_code == 400
        assert http.get("/token").status_code == 405
        config = http.post("/_emulator/config", json={"oauth_delay": 0.0})
        assert config.json() == {"oauth_delay": 0.0}
    calls = emulator.token_requests
    assert len(calls) == 5 and [("issued" in c) for c in calls] == [True] + [False] * 4
    assert emulator.requests == []  # OAuth calls stay out of the API request log
