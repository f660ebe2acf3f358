"""relay/webhooks/sealing.py: webhook secrets sealed with the first key, opened with any, never
shown; and the stored form of a webhook whose secret is sealed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr

from relay.secrets import SecretKeys
from relay.webhooks.model import Webhook
from relay.webhooks.sealing import Opener, SealedSecret, reseal, seal, unseal

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
PLAIN = SecretStr("whsec-plain-6f1d")


def keys(*names: str) -> MultiFernet:
    fernet = SecretKeys.parse(",".join(names)).fernet
    assert fernet is not None
    return fernet


def webhook(secret: SecretStr | None) -> Webhook:
    return Webhook(
        id=7,
        resource="OutboundCall",
        events=("Finished",),
        callback="http://127.0.0.1:9/hook",
        secret=secret,
        created_at=1,
        updated_at=1,
    )


def test_seal_then_unseal_gives_the_secret_back() -> None:
    """What ``seal`` seals, ``unseal`` opens with the same keys."""
    sealed = seal(PLAIN, keys(NEW))
    assert unseal(sealed, keys(NEW)) == PLAIN


def test_the_token_does_not_hold_the_secret() -> None:
    """A sealed secret's token is not the secret, nor contains it."""
    sealed = seal(PLAIN, keys(NEW))
    assert PLAIN.get_secret_value() not in sealed.token


def test_the_first_key_seals() -> None:
    """With keys ``new,old`` a secret is sealed under ``new``: ``new`` alone opens it."""
    sealed = seal(PLAIN, keys(NEW, OLD))
    assert unseal(sealed, keys(NEW)) == PLAIN
    assert unseal(sealed, keys(OLD)) is None


@pytest.mark.parametrize("order", [(OLD, NEW), (NEW, OLD)])
def test_any_key_opens(order: tuple[str, str]) -> None:
    """A secret sealed under ``old`` opens with ``old`` anywhere in the list."""
    sealed = seal(PLAIN, keys(OLD))
    assert unseal(sealed, keys(*order)) == PLAIN


@pytest.mark.parametrize("configured", [None, keys(NEW)])
def test_no_key_opens_it(configured: MultiFernet | None) -> None:
    """A secret sealed under a key not configured (or with no keys at all) is unreadable: None."""
    assert unseal(seal(PLAIN, keys(OLD)), configured) is None


def test_sealing_a_sealed_secret_changes_nothing() -> None:
    """``seal`` leaves a sealed secret as it is: it is not sealed twice."""
    sealed = seal(PLAIN, keys(OLD))
    assert seal(sealed, keys(NEW)) is sealed


RESEAL_CASES: list[tuple[str, Callable[[], SecretStr], str]] = [
    ("plain text is sealed", lambda: PLAIN, "changed"),
    ("a token of another key is re-encrypted", lambda: seal(PLAIN, keys(OLD)), "changed"),
    ("a token of the first key is kept", lambda: seal(PLAIN, keys(NEW)), "same"),
]


@pytest.mark.parametrize(("case", "make", "expect"), RESEAL_CASES, ids=[c[0] for c in RESEAL_CASES])
def test_reseal(case: str, make: Callable[[], SecretStr], expect: str) -> None:
    """``reseal`` leaves every secret under the first key, rewriting only what is not there yet."""
    before = make()
    after = reseal(before, keys(NEW, OLD), Fernet(NEW))
    assert isinstance(after, SealedSecret)
    assert (after is before) == (expect == "same")
    assert unseal(after, keys(NEW)) == PLAIN


def test_reseal_of_an_unreadable_token_is_none() -> None:
    """A token no configured key opens cannot be re-encrypted: None."""
    assert reseal(seal(PLAIN, keys(OLD)), keys(NEW), Fernet(NEW)) is None


def test_a_sealed_secret_never_shows_its_token() -> None:
    """str, repr and a JSON dump of a webhook show asterisks, not the token."""
    sealed = seal(PLAIN, keys(NEW))
    hook = webhook(sealed)
    for text in (str(sealed), repr(sealed), repr(hook), str(hook.model_dump(mode="json"))):
        assert sealed.token not in text


def test_stored_form_keeps_the_token_and_no_secret() -> None:
    """A webhook with a sealed secret is stored with ``secret`` null and the token beside it."""
    sealed = seal(PLAIN, keys(NEW))
    raw = webhook(sealed).to_storage()
    assert PLAIN.get_secret_value().encode() not in raw
    assert b'"secret":null' in raw
    assert sealed.token.encode() in raw


def test_stored_form_reads_back_sealed() -> None:
    """Read back, the webhook holds the same sealed secret, still sealed."""
    hook = Webhook.from_storage(webhook(seal(PLAIN, keys(NEW))).to_storage())
    assert isinstance(hook.secret, SealedSecret)
    assert unseal(hook.secret, keys(NEW)) == PLAIN


def test_opener_opens_the_secret() -> None:
    """The opener gives back the webhook with its secret in plain text."""
    opened = Opener(keys(OLD, NEW)).open(webhook(seal(PLAIN, keys(NEW))))
    assert not isinstance(opened.secret, SealedSecret)
    assert opened.secret == PLAIN


def test_opener_leaves_an_unreadable_secret_sealed() -> None:
    """A secret no key opens stays sealed in the webhook (and so is never used to sign)."""
    hook = webhook(seal(PLAIN, keys(OLD)))
    assert Opener(keys(NEW)).open(hook) is hook


def test_opener_leaves_plain_and_absent_secrets_alone() -> None:
    """A webhook with a plain-text secret, or none, comes back as it is."""
    for hook in (webhook(PLAIN), webhook(None)):
        assert Opener(keys(NEW)).open(hook) is hook


def test_a_name_spelling_the_field_does_not_confuse_the_stored_form() -> None:
    """A webhook named "sealedSecret" with a plain secret reads back as it was written."""
    hook = webhook(PLAIN).model_copy(update={"name": "sealedSecret"})
    assert Webhook.from_storage(hook.to_storage()) == hook
