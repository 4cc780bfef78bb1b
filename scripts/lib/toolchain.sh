# shellcheck shell=bash
# Checks the build toolchain for scripts/test and scripts/demo, installing the
# Debian packages the build needs (librdkafka, OpenSSL) if they are missing. Sourced after
# common.sh.

ensure_toolchain() {
    if ! command -v cargo >/dev/null 2>&1; then
        die "cargo not found: install Rust 1.85 or newer (https://rustup.rs), then run this again"
    fi
    local missing=()
    command -v cc >/dev/null 2>&1 || missing+=(build-essential)
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    [[ -e /usr/include/zlib.h ]] || missing+=(zlib1g-dev)
    # OpenSSL for TLS to Kafka (librdkafka), ClickHouse and the registry.
    [[ -e /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if ((${#missing[@]})); then
        say "toolchain: installing ${missing[*]} (Debian packages)"
        apt_install "$LOG_DIR/toolchain-install.log" "${missing[@]}"
    fi
}
