#!/bin/sh
# Test set-up for the browser test (tests/test_report.py): Debian's chromium and
# chromium-driver. Installs them when missing and possible (root with apt-get); otherwise says
# why, and the browser test skips with the same reason. Never fails the test run itself.
log=build/chromium-install.log
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
mkdir -p build
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "browser test: chromium/chromedriver missing and not installable here (needs root and apt-get);" \
         "install Debian's chromium and chromium-driver to run it" | tee "$log"
    exit 0
fi
echo "browser test: installing Debian's chromium and chromium-driver (log: $log)"
if { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        chromium chromium-driver fonts-dejavu-core; } >"$log" 2>&1; then
    echo "browser test: $(chromium --version 2>/dev/null)"
else
    echo "browser test: the install failed (see $log); the browser test will be skipped"
fi
exit 0
