#!/bin/sh
# Doxygen input filter for include/scpkit/*.h: the headers document each
# declaration with the plain C comment above it; give those comments to
# doxygen as documentation ("/*" -> "/**"), the file's first comment as
# its \file block, and keep the placeholders they write as <kcv> or
# <ct> literal (not HTML). Comments after code on a line stay plain.
awk '
    function esc(s) { gsub(/</, "\\<", s); gsub(/>/, "\\>", s); gsub(/@/, "\\@", s); return s }
    {
        line = $0
        if (!inc && line ~ /^[ \t]*\/\* /) {
            if (!seen) { sub(/\/\* /, "/** \\file\n * ", line); seen = 1 }
            else if (line !~ /\/\* ----/) sub(/\/\* /, "/** ", line)
            inc = 1
        } else if (!inc && line ~ /^[ \t]*\/\*$/) {
            inc = 1
        }
        if (inc) {
            end = index(line, "*/")
            if (end) { print esc(substr(line, 1, end - 1)) substr(line, end); inc = 0 }
            else print esc(line)
            next
        }
        print line
    }
' "$1"
