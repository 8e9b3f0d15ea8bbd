#!/usr/bin/env bash
# `make deb`: the Debian package, dist/trading-api_<version>_<arch>.deb, built with dpkg-deb.
#
#   /usr/sbin/trading-api            release build, Swift standard library linked statically
#                                    (the C libraries stay Debian's: dpkg-shlibdeps names them)
#   /usr/sbin/trading-api-migrate    scripts/migrate.sh, with /usr/share/trading-api/migrations
#   /lib/systemd/system/             trading-api.service and trading-api.socket (packaging/systemd)
#   /etc/default/trading-api         the pool's settings (packaging/etc/default)
#   /etc/nginx/sites-available/trading-api and /etc/nginx/trading-api/
#                                    the site, rendered from nginx/ as the stack renders it
#                                    (scripts/lib/nginx.sh), with the default rate limits
#   /etc/logrotate.d/trading-api     (packaging/etc/logrotate)
#   /usr/lib/tmpfiles.d/trading-api.conf  the live stream's publisher socket directory
#   /usr/share/trading-api/openapi.json and web/ (the dashboard), the man page, copyright and
#                                    changelog
# The version is packaging/debian/changelog's. SKIP_BUILD=1 packages the existing
# .build/release/trading-api (which must then be a --static-swift-stdlib build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PROG=deb
log() { printf '[%s %s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v swift >/dev/null 2>&1 || PATH="/opt/swift/usr/bin:$PATH"
for lib in proc config nginx; do
    # shellcheck disable=SC1090
    . "$ROOT/scripts/lib/$lib.sh"
done

PKG=trading-api
DEBIAN_SRC="$ROOT/packaging/debian"
VERSION=$(dpkg-parsechangelog -l "$DEBIAN_SRC/changelog" -S Version)
ARCH=$(dpkg --print-architecture)
OUT_DIR="$ROOT/dist"
DEB="$OUT_DIR/${PKG}_${VERSION}_${ARCH}.deb"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "swift build -c release --static-swift-stdlib (BIND_NOW)"
    swift build -c release --static-swift-stdlib -Xlinker -z -Xlinker now
fi
BIN="$ROOT/.build/release/trading-api"
[ -x "$BIN" ] || die "$BIN not found"
if ldd "$BIN" | grep -q libswiftCore; then
    die "$BIN links the Swift runtime dynamically (build it with --static-swift-stdlib)"
fi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
TREE="$STAGE/$PKG"
mkdir -p "$TREE/DEBIAN"

log "staging $PKG $VERSION ($ARCH)"
install -D -m 0755 "$BIN" "$TREE/usr/sbin/trading-api"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$TREE/usr/sbin/trading-api"
install -D -m 0755 scripts/migrate.sh "$TREE/usr/sbin/trading-api-migrate"
install -d -m 0755 "$TREE/usr/share/trading-api/migrations"
install -m 0644 sql/migrations/*.sql "$TREE/usr/share/trading-api/migrations/"
install -m 0644 docs/openapi.json "$TREE/usr/share/trading-api/openapi.json"
# The dashboard nginx serves at / (STATIC_DIR/web).
(cd web && find . -type f | while read -r f; do install -D -m 0644 "$f" "$TREE/usr/share/trading-api/web/$f"; done)
install -D -m 0644 -t "$TREE/lib/systemd/system" packaging/systemd/trading-api.service packaging/systemd/trading-api.socket
install -D -m 0644 packaging/etc/default "$TREE/etc/default/trading-api"
install -D -m 0644 packaging/etc/logrotate "$TREE/etc/logrotate.d/trading-api"
install -D -m 0644 packaging/systemd/tmpfiles.conf "$TREE/usr/lib/tmpfiles.d/trading-api.conf"

# The nginx site: the stack's templates with the installed paths and the default limits (none
# of a calling test stack's RATE_*, OPS_ALLOW or CORS_ORIGINS: no origin is allowed until the
# operator lists it in /etc/nginx/trading-api/cors-origins.conf).
for k in "${RATE_KEYS[@]}" RATE_LIMITS_LIFTED OPS_ALLOW CORS_ORIGINS FCGI_UPSTREAMS NCHAN_PUBLISH_LISTEN NCHAN_PUBLISH_ALLOW; do unset "$k"; done
rate_limits
install -d -m 0755 "$TREE/etc/nginx/sites-available" "$TREE/etc/nginx/trading-api"
CONF_DIR=/etc/nginx/trading-api ACCESS_LOG=/var/log/nginx/trading-api-access.log \
    STATIC_DIR=/usr/share/trading-api FCGI_SOCKET=/run/trading-api/fcgi.sock \
    PUBLISH_SOCKET=/run/trading-api-nchan/publish.sock \
    LISTEN=$'listen 80 default_server;\nlisten [::]:80 default_server;' \
    nginx_render_site "$TREE/etc/nginx/sites-available/trading-api" "$TREE/etc/nginx/trading-api"
chmod 0644 "$TREE"/etc/nginx/sites-available/* "$TREE"/etc/nginx/trading-api/*

install -D -m 0644 packaging/trading-api.8 "$TREE/usr/share/man/man8/trading-api.8"
gzip -9n "$TREE/usr/share/man/man8/trading-api.8"
ln -s trading-api.8.gz "$TREE/usr/share/man/man8/trading-api-migrate.8.gz"
install -D -m 0644 "$DEBIAN_SRC/copyright" "$TREE/usr/share/doc/$PKG/copyright"
gzip -9n <"$DEBIAN_SRC/changelog" >"$TREE/usr/share/doc/$PKG/changelog.gz"
chmod 0644 "$TREE/usr/share/doc/$PKG/changelog.gz"

# Control files. dpkg-shlibdeps reads a source package's debian/control: a minimal one.
install -m 0755 "$DEBIAN_SRC/postinst" "$DEBIAN_SRC/prerm" "$DEBIAN_SRC/postrm" "$TREE/DEBIAN/"
(cd "$TREE" && find etc -type f | sort | sed 's|^|/|') >"$TREE/DEBIAN/conffiles"
mkdir -p "$STAGE/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" >"$STAGE/shlibs/debian/control"
SHLIBS=$(cd "$STAGE/shlibs" && dpkg-shlibdeps -O "$TREE/usr/sbin/trading-api" | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || die "dpkg-shlibdeps found no dependencies"
INSTALLED_SIZE=$(du -sk --exclude=DEBIAN "$TREE" | cut -f1)
render "$DEBIAN_SRC/control.in" "$TREE/DEBIAN/control" VERSION ARCH INSTALLED_SIZE SHLIBS
(cd "$TREE" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) \
    >"$TREE/DEBIAN/md5sums"
chmod 0644 "$TREE/DEBIAN/control" "$TREE/DEBIAN/conffiles" "$TREE/DEBIAN/md5sums"

mkdir -p "$OUT_DIR"
dpkg-deb --root-owner-group -Zxz --build "$TREE" "$DEB" >/dev/null
log "built $DEB ($(du -h "$DEB" | cut -f1))"
printf '%s\n' "$DEB"
