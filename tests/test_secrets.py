"""relay/secrets.py's lists (RELAY_CALLFIRE_SECRETS, RELAY_API_CREDENTIALS, RELAY_SECRET_KEYS) refuse
an empty item; SecretKeys (RELAY_SECRET_KEYS): parsed, validated without ever being shown,
and refused at start-up with exit 2 and one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from relay.cli import main
from relay.secrets import ApiCredentials, CallfireSecrets, SecretKeys
from relay.settings import Settings

KEY = Fernet.generate_key().decode()
BAD = "not-a-key-9c41e2"


def test_keys_in_order() -> None:
    """Comma-separated keys are kept in order, spaces around them dropped."""
    other = Fernet.generate_key().decode()
    parsed = SecretKeys.parse(f" {KEY} , {other} ")
    assert [k.get_secret_value() for k in parsed.keys] == [KEY, other]


@pytest.mark.parametrize(
    ("text", "empty"), [(",", "1 of 2"), (" , ", "1 of 2"), ("{k},,{k}", "2 of 3"), ("{k},", "2 of 2")]
)
def test_an_empty_key_is_refused(text: str, empty: str) -> None:
    """An empty item ("," or "k1,,k2") is an error, never read as fewer keys or none."""
    with pytest.raises(ValueError, match=f"key {empty} is empty"):
        SecretKeys.parse(text.replace("{k}", KEY))


@pytest.mark.parametrize("text", [",", "a,,b", "a,", " , "])
def test_an_empty_secret_or_credential_is_refused(text: str) -> None:
    """RELAY_CALLFIRE_SECRETS and RELAY_API_CREDENTIALS as RELAY_SECRET_KEYS: an empty item is an
    error, not one secret (or credential) fewer."""
    with pytest.raises(ValueError, match=r"secret .* is empty"):
        CallfireSecrets.parse(text)
    with pytest.raises(ValueError, match=r"credential .* is empty"):
        ApiCredentials.parse(text.replace("a", "u:p").replace("b", "v:q"))


def test_blank_lists_are_none() -> None:
    """Blank text is none (the setting unset), for each list."""
    assert not CallfireSecrets.parse("  ")
    assert not ApiCredentials.parse("")


def test_no_keys_is_falsy() -> None:
    """Unset (or blank) means no keys: secrets stay in plain text."""
    assert not SecretKeys.parse("")
    assert Settings().secret_keys.fernet is None


def test_repr_hides_the_keys() -> None:
    """Neither repr nor str of the setting shows a key."""
    parsed = SecretKeys.parse(KEY)
    assert KEY not in repr(parsed)
    assert KEY not in str(Settings(secret_keys=KEY))


@pytest.mark.parametrize("text", [BAD, f"{KEY},{BAD}", KEY[:-4], "change-me"])
def test_malformed_key_is_refused_without_showing_it(text: str) -> None:
    """A malformed key is named by its position; its value is not in the message."""
    with pytest.raises(ValueError, match=r"key \d of \d is not a Fernet key") as raised:
        SecretKeys.parse(text)
    assert text.split(",")[-1] not in str(raised.value)


@pytest.mark.parametrize("source", ["env", "file"])
def test_malformed_key_exits_2_naming_the_setting(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """RELAY_SECRET_KEYS (or its _FILE) holding a malformed key: exit 2, one line, no key shown."""
    if source == "env":
        monkeypatch.setenv("RELAY_SECRET_KEYS", f"{KEY},{BAD}")
    else:
        path = tmp_path / "keys"
        path.write_text(f"{KEY},{BAD}\n")
        monkeypatch.setenv("RELAY_SECRET_KEYS_FILE", str(path))
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "RELAY_SECRET_KEYS: key 2 of 2 is not a Fernet key" in err
    assert BAD not in err and KEY not in err


def test_keys_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_SECRET_KEYS_FILE names a file holding the keys, as every secret setting may."""
    path = tmp_path / "keys"
    path.write_text(KEY + "\n")
    monkeypatch.setenv("RELAY_SECRET_KEYS_FILE", str(path))
    assert [k.get_secret_value() for k in Settings.load().secret_keys.keys] == [KEY]


def test_new_key_prints_a_working_key(capsys: pytest.CaptureFixture[str]) -> None:
    """`relay secrets new-key` prints a key RELAY_SECRET_KEYS accepts, a different one each time."""
    assert main(["secrets", "new-key"]) == 0
    assert main(["secrets", "new-key"]) == 0
    first, second = capsys.readouterr().out.split()
    assert first != second
    assert SecretKeys.parse(f"{first},{second}").fernet is not None
