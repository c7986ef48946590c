#!/bin/sh
# Installs Debian's headless Chromium and its driver for the browser test (tests/test_web_browser.py).
# Playwright drives /usr/bin/chromium; it never downloads a browser of its own.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
