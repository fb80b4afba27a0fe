"""The translation catalogues are complete: re-extracting every string leaves nothing empty
or fuzzy in zh_Hans and ru, and the committed .mo files match the .po files.

``makemessages`` runs in a scratch copy of the repository, so the committed catalogues are
never touched. Needs GNU gettext (xgettext, msgmerge, msgfmt: Debian's ``gettext`` package,
installed by scripts/install_system_deps.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("zh_Hans", "ru")
SOURCES = ("config", "gateway", "keys", "templates", "static", "locale", "manage.py")


def _require_gettext() -> None:
    missing = [tool for tool in ("xgettext", "msgmerge", "msgfmt") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"GNU gettext is missing ({', '.join(missing)}): run scripts/install_system_deps.sh")
        pytest.skip(f"GNU gettext is missing: {', '.join(missing)}")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, polib.POFile]:
    """The catalogues as ``makemessages`` leaves them after re-extracting a scratch copy."""
    _require_gettext()
    scratch = tmp_path_factory.mktemp("catalogues")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, scratch / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, scratch / name)
    env = {**os.environ, "DEBUG": "true", "KEYGATE_ENV_FILE": str(scratch / "none.env")}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "manage.py", "makemessages", "--no-location", *(f"-l{lang}" for lang in LANGUAGES)]
    result = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {lang: polib.pofile(str(scratch / "locale" / lang / "LC_MESSAGES" / "django.po")) for lang in LANGUAGES}


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_string_is_left_untranslated_after_re_extraction(extracted, language) -> None:
    catalogue = extracted[language]
    empty = [entry.msgid for entry in catalogue.untranslated_entries()]
    assert not empty, f"{len(empty)} untranslated in {language}: {empty[:10]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_entry_is_fuzzy_after_re_extraction(extracted, language) -> None:
    fuzzy = [entry.msgid for entry in extracted[language].fuzzy_entries()]
    assert not fuzzy, f"{len(fuzzy)} fuzzy in {language} (a guessed translation of another message): {fuzzy[:10]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_plural_entry_has_all_the_forms_the_language_needs(extracted, language) -> None:
    catalogue = extracted[language]
    forms = int(catalogue.metadata["Plural-Forms"].split("nplurals=")[1].split(";")[0])
    short = [e.msgid for e in catalogue if e.msgid_plural and len([v for v in e.msgstr_plural.values() if v]) < forms]
    assert not short, short


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_mo_file_is_compiled_from_the_committed_po_file(language) -> None:
    _require_gettext()
    folder = ROOT / "locale" / language / "LC_MESSAGES"
    committed = polib.mofile(str(folder / "django.mo"))
    source = polib.pofile(str(folder / "django.po"))
    # Keyed by context too: "admin" (the admin site) and "admin" (a team role) are two entries.
    expected = {(e.msgctxt, e.msgid): e.msgstr or dict(e.msgstr_plural) for e in source.translated_entries()}
    compiled = {(e.msgctxt, e.msgid): e.msgstr or dict(e.msgstr_plural) for e in committed if e.msgid}
    assert compiled == expected, "run msgfmt -o django.mo django.po in " + str(folder)
    check = subprocess.run(["msgfmt", "--check", "-o", os.devnull, str(folder / "django.po")], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
