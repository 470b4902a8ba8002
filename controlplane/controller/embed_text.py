#!/usr/bin/python3
"""Writes a C++ header holding a text file as one string_view constant, so a
file of the source tree (the status page) ships inside the binary.

usage: embed_text.py INPUT OUTPUT NAME"""
import sys

DELIMITER = "onramp_embed"


def main():
    src, out, name = sys.argv[1:4]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    if f"){DELIMITER}\"" in text:
        sys.exit(f"embed_text.py: {src} contains the raw string delimiter")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"// Generated from {src.rsplit('/', 1)[-1]} by embed_text.py; do not edit.\n")
        f.write("#pragma once\n#include <string_view>\n")
        f.write(f"inline constexpr std::string_view {name} = R\"{DELIMITER}(")
        f.write(text)
        f.write(f"){DELIMITER}\";\n")


if __name__ == "__main__":
    main()
