#!/bin/sh
# An arbor worker in POSIX sh (docs/WRITING-WORKERS.md): reports its phases
# and, when it fails, a typed error over the notify fd; nothing but the
# shell. Counts the lines of the file given as $1.
#
# notify MESSAGE: one JSON object per call (one datagram). Outside arbor
# (no ARBOR_NOTIFY_FD) it does nothing. Keep a message under 8 KiB: a
# shell's printf writes one datagram only up to its buffer size.
notify() {
    [ -n "${ARBOR_NOTIFY_FD:-}" ] && printf '%s\n' "$1" >&"$ARBOR_NOTIFY_FD"
}
# A JSON string's contents: backslash, quote, tab and newline escaped.
json_esc() {
    printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g; s/	/\\t/g' | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

# Cancel (SIGTERM for a program that has not reported, the message for
# one that has once the supervisor says so) ends the work: clean up, exit 0.
trap 'notify "{\"phase\":\"cancel_requested\"}"; notify "{\"phase\":\"cleanup\"}";
      notify "{\"phase\":\"exiting\"}"; exit 0' TERM

notify '{"phase":"ready"}'
notify '{"phase":"running"}'
if [ ! -r "${1:-}" ]; then
    notify "{\"error\":{\"type\":\"FileNotFound\",\"message\":\"$(json_esc "cannot read \"${1:-}\"")\"}}"
    notify '{"phase":"cleanup"}'
    notify '{"phase":"exiting"}'
    exit 1
fi
echo "$1: $(wc -l < "$1") lines"
notify '{"phase":"cleanup"}'
notify '{"phase":"exiting"}'
