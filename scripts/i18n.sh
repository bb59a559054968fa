#!/usr/bin/env bash
# Translation catalog workflow. Run from anywhere; works on the repository root.
#
#   scripts/i18n.sh extract   source strings -> locales/messages.pot
#   scripts/i18n.sh update    messages.pot -> locales/{ar,en,fr}/LC_MESSAGES/messages.po
#   scripts/i18n.sh compile   compile every catalog into a temp dir (a syntax check only:
#                             the bot compiles the .po files in memory at startup)
#   scripts/i18n.sh check     fail if messages.pot is stale, a catalog is out of date,
#                             an ar/fr message is untranslated or fuzzy, placeholders differ,
#                             or the Arabic plural header is wrong
#
# Marked strings: N_("...") , <translator>.gettext("...") , <translator>.ngettext("...", "...", n)
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
PYBABEL=("$PYTHON" -m babel.messages.frontend)
QUIET=("${PYBABEL[@]}" --quiet)
SOURCES=(bot handlers forms storage exports monitoring locales)
LANGS=(ar en fr)
POT=locales/messages.pot

existing_sources() {
    local dir
    for dir in "${SOURCES[@]}"; do
        [[ -d "$dir" ]] && printf '%s\n' "$dir"
    done
}

# extract_to FILE: write a fresh template (sorted, without locations to keep diffs small).
extract_to() {
    local -a dirs
    mapfile -t dirs < <(existing_sources)
    "${QUIET[@]}" extract -F locales/babel.cfg \
        -k N_ -k gettext -k ngettext:1,2 \
        --no-location --sort-output --no-wrap \
        --project Sanad --copyright-holder "Sanad contributors" \
        -o "$1" "${dirs[@]}"
}

cmd_extract() {
    local tmp
    tmp="$(mktemp)"
    extract_to "$tmp"
    # Keep the committed file when only POT-Creation-Date changed.
    if [[ -f "$POT" ]] && diff -q -I '^"POT-Creation-Date:' "$POT" "$tmp" >/dev/null; then
        rm -f "$tmp"
        echo "$POT unchanged"
    else
        mv "$tmp" "$POT"
        chmod 644 "$POT"
        echo "wrote $POT"
    fi
}

cmd_update() {
    local lang
    for lang in "${LANGS[@]}"; do
        if [[ -f "locales/$lang/LC_MESSAGES/messages.po" ]]; then
            "${QUIET[@]}" update -i "$POT" -d locales -D messages -l "$lang" \
                --no-fuzzy-matching --no-wrap --ignore-pot-creation-date
        else
            "${QUIET[@]}" init -i "$POT" -d locales -D messages -l "$lang" --no-wrap
        fi
    done
    # pybabel init (and Babel's table before the python-babel#816 fix) can write a wrong
    # Arabic Plural-Forms; put the hand-checked one back.
    "$PYTHON" -m locales.check --fix-plural-forms
}

cmd_compile() {
    local tmp lang
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    for lang in "${LANGS[@]}"; do
        "${PYBABEL[@]}" compile --statistics -D messages -l "$lang" \
            -i "locales/$lang/LC_MESSAGES/messages.po" -o "$tmp/$lang.mo"
    done
}

cmd_check() {
    local tmp status=0
    tmp="$(mktemp)"
    trap 'rm -f "$tmp"' RETURN
    extract_to "$tmp"
    "$PYTHON" -m locales.check --against "$tmp" || status=$?
    return "$status"
}

case "${1:-}" in
    extract) cmd_extract ;;
    update) cmd_update ;;
    compile) cmd_compile ;;
    check) cmd_check ;;
    *)
        echo "usage: $0 {extract|update|compile|check}" >&2
        exit 2
        ;;
esac
