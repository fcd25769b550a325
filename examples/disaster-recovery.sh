#!/usr/bin/env bash
# Disaster recovery when a whole region is lost, from nothing, on one machine.
#
# Region A (a `tresor server --dev`) holds the HSM "contoso" with keys, key
# versions, tags, a disabled key and role assignments. Its security domain
# goes to three custodians (quorum 2) and a full backup to an Azurite blob
# container. Then region A is killed and its data directory deleted. A new
# region B restores "contoso" with Managed HSM's five steps:
#
#   1. create a new HSM             tresor create
#   2. activate recovery            tresor security-domain init-recovery
#   3. build and upload the blob    tresor security-domain restore-blob / upload
#   4. back up the new HSM          tresor backup start   (its rollback point)
#   5. restore the source's backup  tresor restore start --backup-folder …
#
# and checks that keys, versions, attributes, tags and role assignments are as
# they were, that an old signature verifies and an old ciphertext decrypts.
# It prints PASS or FAIL for each check and exits 0 only if all passed.
#
# The operator signs in to both regions through one external OIDC issuer
# (a key pair made here with openssl, given to both regions as a JWKS file),
# so that its object id, which role assignments name, is the same in both.
# See docs/disaster-recovery.md.
#
# Needs: bash, openssl, curl, and either $TRESOR (or tresor on PATH) or Go to
# build it; Azurite from $TRESOR_AZURITE_BLOB, or installed with npm into
# .cache/azurite as ./scripts/test does. KEEP=1 keeps the work directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tresor-dr.XXXXXX")
pids=()
failures=0

cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do
		kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
	done
	if ((rc != 0)); then
		for log in "$work"/*.log; do
			[[ -f $log ]] || continue
			echo "--- last lines of $(basename "$log")" >&2
			grep -v 'client secret' "$log" | tail -n 20 >&2
		done
	fi
	if [[ ${KEEP:-} == 1 ]]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }

# pass/fail record one check.
pass() { printf '   PASS  %s\n' "$1"; }
fail() {
	printf '   FAIL  %s\n' "$1"
	if [[ -n ${2:-} ]]; then
		printf '%s\n' "$2" | sed 's/^/         /'
	fi
	failures=$((failures + 1))
}

# check NAME CMD… passes when CMD exits 0.
check() {
	local name=$1
	shift
	if "$@" >"$work/check.out" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(head -c 600 "$work/check.out")"
	fi
}

# refused NAME PATTERN CMD… passes when CMD fails with a message matching
# PATTERN (grep -E); the message is shown.
refused() {
	local name=$1 pattern=$2
	shift 2
	if "$@" >"$work/check.out" 2>&1; then
		fail "$name" "it succeeded: $(head -c 300 "$work/check.out")"
	elif grep -Eq -- "$pattern" "$work/check.out"; then
		pass "$name"
		sed 's/^/         /' "$work/check.out" | head -n 3
	else
		fail "$name" "unexpected message: $(head -c 600 "$work/check.out")"
	fi
}

# same NAME FILE1 FILE2 passes when the files are equal.
same() {
	if diff -u "$2" "$3" >"$work/diff.out"; then
		pass "$1"
	else
		fail "$1" "$(head -n 30 "$work/diff.out")"
	fi
}

start=$SECONDS
say "Set-up (work directory $work)"

# --- tresor ------------------------------------------------------------------
tresor=${TRESOR:-}
if [[ -z $tresor ]] && command -v tresor >/dev/null 2>&1; then
	tresor=$(command -v tresor)
fi
if [[ -z $tresor ]]; then
	info "building tresor (go build ./cmd/tresor)"
	(cd "$repo" && go build -o "$work/tresor" ./cmd/tresor)
	tresor=$work/tresor
fi
info "tresor: $tresor"
command -v openssl >/dev/null || { echo "openssl is missing" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing" >&2; exit 1; }

# The CLI reads only what this script gives it: no login profile of the user.
export TRESOR_CONFIG_DIR=$work/cli
unset TRESOR_SERVER TRESOR_CA_FILE TRESOR_TENANT_ID TRESOR_CLIENT_ID TRESOR_CLIENT_SECRET \
	TRESOR_SUBSCRIPTION_ID TRESOR_ACCESS_TOKEN TRESOR_HSM_ACCESS_TOKEN
tresor() { "$tresor" "$@"; }

# --- Azurite -------------------------------------------------------------------
azurite=${TRESOR_AZURITE_BLOB:-}
if [[ -z $azurite ]]; then
	azurite=$repo/.cache/azurite/node_modules/.bin/azurite-blob
	if [[ ! -x $azurite ]]; then
		command -v npm >/dev/null || { echo "npm is missing: install Node.js, or set TRESOR_AZURITE_BLOB" >&2; exit 1; }
		info "installing azurite@3.37.0 into .cache/azurite"
		npm install --prefix "$repo/.cache/azurite" --no-audit --no-fund azurite@3.37.0 >"$work/npm.log" 2>&1
	fi
fi

# Azurite's well-known development account and its published key.
account=devstoreaccount1
account_key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
account_hexkey=$(printf '%s' "$account_key" | openssl base64 -d -A | od -An -v -tx1 | tr -d ' \n')

# Start azurite-blob on a free port: pick one, retry if it was taken.
azport=
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue # in use
	setsid "$azurite" --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence \
		--silent --skipApiVersionCheck --loose --disableTelemetry >"$work/azurite.log" 2>&1 &
	pid=$!
	disown "$pid"
	pids+=("$pid")
	for _ in $(seq 100); do
		if curl -s -o /dev/null "http://127.0.0.1:$port/$account?comp=list"; then
			azport=$port
			break 2
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
done
[[ -n $azport ]] || { echo "Azurite did not start" >&2; exit 1; }
blob=http://127.0.0.1:$azport/$account
info "Azurite: $blob"

# urlencode S prints S percent-encoded for a query string.
urlencode() {
	local s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[a-zA-Z0-9.~_-]) out+=$c ;;
		*) printf -v c '%%%02X' "'$c" && out+=$c ;;
		esac
	done
	printf '%s' "$out"
}

# hmac STRING prints the base64 HMAC-SHA256 of STRING under the account key.
hmac() {
	printf '%s' "$1" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$account_hexkey" -binary | openssl base64 -A
}

sas_version=2021-08-06

# container_sas CONTAINER PERMISSIONS EXPIRY prints a service SAS for a
# container (signed resource "c"). The string-to-sign of versions from
# 2020-12-06 on: permissions, start, expiry, canonical resource, identifier,
# IP range, protocol, version, resource, snapshot time, encryption scope,
# rscc, rscd, rsce, rscl, rsct — one per line.
container_sas() {
	local container=$1 perms=$2 expiry=$3 sts
	sts="$perms"$'\n'$'\n'"$expiry"$'\n'"/blob/$account/$container"$'\n'$'\n'$'\n'"https,http"$'\n'"$sas_version"$'\n'"c"$'\n'$'\n'$'\n'$'\n'$'\n'$'\n'$'\n'
	printf 'sv=%s&spr=https,http&se=%s&sr=c&sp=%s&sig=%s' \
		"$sas_version" "$(urlencode "$expiry")" "$perms" "$(urlencode "$(hmac "$sts")")"
}

# account_sas PERMISSIONS EXPIRY prints an account SAS for the blob service
# (resource types service, container, object); its string-to-sign ends with
# a newline after the (empty) encryption scope.
account_sas() {
	local perms=$1 expiry=$2 sts
	sts="$account"$'\n'"$perms"$'\n'"b"$'\n'"sco"$'\n'$'\n'"$expiry"$'\n'$'\n'"https,http"$'\n'"$sas_version"$'\n'$'\n'
	printf 'sv=%s&ss=b&srt=sco&spr=https,http&se=%s&sp=%s&sig=%s' \
		"$sas_version" "$(urlencode "$expiry")" "$perms" "$(urlencode "$(hmac "$sts")")"
}

in_one_day=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v+1d +%Y-%m-%dT%H:%M:%SZ)
an_hour_ago=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v-1H +%Y-%m-%dT%H:%M:%SZ)
code=$(curl -s -o "$work/curl.out" -w '%{http_code}' -X PUT -H 'Content-Length: 0' \
	"$blob/backups?restype=container&$(account_sas rwdlac "$in_one_day")")
[[ $code == 201 ]] || { echo "creating the container failed: HTTP $code $(cat "$work/curl.out")" >&2; exit 1; }
container=$blob/backups
sas=$(container_sas backups racwdl "$in_one_day")
info "container: $container (service SAS, permissions racwdl, sv=$sas_version)"

# --- the external OIDC issuer: one operator identity for both regions ----------
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
issuer=https://idp.contoso.example/tenant
# One audience per plane, as Entra ID has: tokens for the region endpoint
# (ARM) are not good on the HSM endpoints, nor the other way round.
arm_audience=api://tresor-arm
hsm_audience=api://tresor-hsm
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/idp.key" 2>/dev/null
modulus=$(openssl rsa -in "$work/idp.key" -noout -modulus | cut -d= -f2)
# shellcheck disable=SC2059 # the format is the modulus as \xHH escapes
n=$(printf "$(printf '%s' "$modulus" | sed 's/../\\x&/g')" | b64url)
printf '{"keys":[{"kty":"RSA","kid":"idp-1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}\n' "$n" >"$work/idp-jwks.json"
operator=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr '[:upper:]' '[:lower:]')

# token OID AUD prints a one-hour RS256 token of the issuer for object id
# OID and audience AUD.
token() {
	local now header payload
	now=$(date +%s)
	header=$(printf '{"alg":"RS256","typ":"JWT","kid":"idp-1"}' | b64url)
	payload=$(printf '{"iss":"%s","aud":"%s","sub":"%s","oid":"%s","iat":%d,"nbf":%d,"exp":%d}' \
		"$issuer" "$2" "$1" "$1" "$now" "$now" $((now + 3600)) | b64url)
	printf '%s.%s.%s' "$header" "$payload" \
		"$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$work/idp.key" -binary | b64url)"
}
printf '{"identity":{"trustedIssuers":[{"issuer":"%s","jwksFile":"%s","armAudiences":["%s"],"hsmAudiences":["%s"]}],"regionAdmins":["%s"]}}\n' \
	"$issuer" "$work/idp-jwks.json" "$arm_audience" "$hsm_audience" "$operator" >"$work/region.json"
info "operator (external issuer $issuer): object id $operator"

# --- regions -------------------------------------------------------------------
# start_region NAME LOCATION starts a dev region with its own data directory,
# CA, seal and identity on a free port, and prints its PID; the CLI
# settings are in NAME/dev.env.
start_region() {
	local dir=$work/$1
	setsid "$tresor" server --dev --config "$work/region.json" --data-dir "$dir" \
		--listen 127.0.0.1:0 --region "$2" >"$work/$1.log" 2>&1 &
	local pid=$!
	disown "$pid"
	pids+=("$pid")
	for _ in $(seq 300); do
		[[ -f $dir/dev.env ]] && break
		kill -0 "$pid" 2>/dev/null || { echo "region $1 did not start" >&2; return 1; }
		sleep 0.1
	done
	[[ -f $dir/dev.env ]] || { echo "region $1 did not start" >&2; return 1; }
	region_pid=$pid
}

# as_operator DIR: the CLI talks to the region in DIR as the operator.
as_operator() {
	# shellcheck disable=SC1091
	source "$1/dev.env"
	export TRESOR_SERVER TRESOR_CA_FILE TRESOR_TENANT_ID
	unset TRESOR_CLIENT_ID TRESOR_CLIENT_SECRET
	TRESOR_ACCESS_TOKEN=$(token "$operator" "$arm_audience")
	TRESOR_HSM_ACCESS_TOKEN=$(token "$operator" "$hsm_audience")
	export TRESOR_ACCESS_TOKEN TRESOR_HSM_ACCESS_TOKEN
}

# ============================================================================
say "Region A: the HSM contoso with keys, versions, tags and role assignments"
start_region A eastus
pid_a=$region_pid
as_operator "$work/A"
server_a=$TRESOR_SERVER
info "region A: $server_a"
cd "$work"

tresor create --hsm-name contoso --resource-group rg --location eastus \
	--administrators "$operator" --retention-days 7 -o none
mkdir custodians
for i in 0 1 2; do
	openssl req -newkey rsa:2048 -nodes -keyout "custodians/cert_$i.key" -x509 -days 365 \
		-out "custodians/cert_$i.cer" -subj "/CN=custodian $i" 2>/dev/null
done
tresor security-domain download --hsm-name contoso --sd-quorum 2 \
	--sd-wrapping-keys custodians/cert_0.cer custodians/cert_1.cer custodians/cert_2.cer \
	--security-domain-file contoso-SD.json --query statusDetails -o tsv | sed 's/^/   /'

tresor role assignment create --hsm-name contoso --role "Managed HSM Crypto User" \
	--assignee-object-id "$operator" --scope / -o none
# A second principal, local to region A, allowed to use one key.
app_a=$(tresor principal create --display-name payments-app --query objectId -o tsv)
tresor role assignment create --hsm-name contoso --role "Managed HSM Crypto User" \
	--assignee-object-id "$app_a" --scope /keys/payments -o none
info "principal payments-app in region A: $app_a (Crypto User at /keys/payments)"

tresor key create --hsm-name contoso --name payments --kty RSA-HSM --size 2048 --tags team=payments -o none
tresor key create --hsm-name contoso --name payments --kty RSA-HSM --size 2048 --tags team=payments env=prod -o none
tresor key create --hsm-name contoso --name signing --kty EC-HSM --curve P-256 --tags team=identity -o none
tresor key create --hsm-name contoso --name wrapping --kty oct-HSM --size 256 -o none
tresor key create --hsm-name contoso --name wrapping --kty oct-HSM --size 256 --ops encrypt decrypt -o none
tresor key create --hsm-name contoso --name legacy --kty RSA-HSM --size 2048 --tags retired=2026 -o none
tresor key set-attributes --hsm-name contoso --name legacy --enabled false -o none
info "keys: $(tresor key list --hsm-name contoso --query '[].name' -o tsv | tr '\n' ' ')"

# Outputs made in region A, to be checked in region B.
digest=$(printf 'invoice 2026-0042' | openssl dgst -sha256 -binary | openssl base64 -A)
payments_v1=$(tresor key list-versions --hsm-name contoso --name payments --query '[0].kid' -o tsv)
payments_v1=${payments_v1##*/}
rsa_sig=$(tresor key sign --hsm-name contoso --name payments --version "$payments_v1" -a PS256 \
	--digest "$digest" --query signature -o tsv)
ec_sig=$(tresor key sign --hsm-name contoso --name signing -a ES256 --digest "$digest" --query signature -o tsv)
rsa_ct=$(tresor key encrypt --hsm-name contoso --name payments -a RSA-OAEP-256 \
	--value 'the secret recipe' --data-type plaintext --query result -o tsv)
tresor key encrypt --hsm-name contoso --name wrapping -a A256GCM --value 'the secret recipe' \
	--data-type plaintext --query '[result, iv, tag]' -o tsv | tr '\t' '\n' >aes.txt
{ read -r aes_ct; read -r aes_iv; read -r aes_tag; } <aes.txt
info "signed a digest with payments (version $payments_v1, PS256) and signing (ES256);"
info "encrypted a message with payments (RSA-OAEP-256) and wrapping (A256GCM)"

# record DIR ENDPOINT writes the state to compare into DIR: every key with its
# versions (attributes, tags, kid), and the role assignments. The kid holds the
# HSM's endpoint, which the new region changes: it is written as {hsm}.
record() {
	local dir=$1 hsm
	hsm=$(tresor show --hsm-name contoso --query properties.hsmUri -o tsv)
	hsm=${hsm%/}
	mkdir -p "$dir"
	{
		tresor key list --hsm-name contoso --query 'sort_by(@, &name)'
		for k in $(tresor key list --hsm-name contoso --query 'sort_by(@, &name)[].name' -o tsv); do
			tresor key list-versions --hsm-name contoso --name "$k"
			tresor key show --hsm-name contoso --name "$k" --query '{kty:key.kty, crv:key.crv, n:key.n, x:key.x, keyOps:key.keyOps}'
		done
	} | sed "s#$hsm#{hsm}#g" >"$dir/keys.json"
	# principalName is the region's directory's name for the id: it is left out.
	tresor role assignment list --hsm-name contoso --query \
		'sort_by(@, &name)[].{name:name, principalId:principalId, roleDefinitionId:roleDefinitionId, roleName:roleName, scope:scope}' \
		>"$dir/roles.json"
}
record recorded
info "recorded $(grep -c '"kid"' recorded/keys.json) key entries and $(grep -c '"principalId"' recorded/roles.json) role assignments"

say "Region A: full backup to the blob container"
folder_url=$(tresor backup start --hsm-name contoso --storage-resource-uri "$container" \
	--storage-container-SAS-token "$sas" --query folderUrl -o tsv)
info "backup: $folder_url"

say "Region A is lost: kill -9, data directory deleted"
kill -9 -- "-$pid_a"
while kill -0 "$pid_a" 2>/dev/null; do sleep 0.1; done
rm -rf "$work/A"
info "kept: contoso-SD.json, custodians/cert_{0,1,2}.{key,cer}, the container and a SAS token"
if curl -s -o /dev/null --max-time 2 -k "$server_a"; then
	fail "region A is gone" "it still answers"
else
	pass "region A is gone ($server_a does not answer)"
fi

# ============================================================================
say "Region B: a new region (its own data directory, seal and identity)"
start_region B westus
as_operator "$work/B"
info "region B: $TRESOR_SERVER"

# The most recent complete backup of contoso, found now: the new HSM's own
# backups (step 4) land in the same container, under the same name.
folder=$(tresor backup list --storage-resource-uri "$container" --storage-container-SAS-token "$sas" \
	--query "[?complete && sourceHsm=='contoso'] | [-1].folder" -o tsv)
info "most recent backup of contoso: $folder"
if [[ $folder == "${folder_url##*/}" ]]; then
	pass "backup list finds the backup"
else
	fail "backup list finds the backup" "got '$folder'"
fi

say "Step 1. Create a new HSM"
tresor create --hsm-name contoso --resource-group rg --location westus \
	--administrators "$operator" --retention-days 7 \
	--query '[properties.hsmUri, properties.securityDomainProperties.activationStatus]' -o tsv |
	sed 's/^/   contoso: /'

say "Step 2. Activate security-domain recovery: download the exchange key's certificate"
tresor security-domain init-recovery --hsm-name contoso --sd-exchange-key contoso-exchange.cer
info "$(openssl x509 -in contoso-exchange.cer -noout -subject)"
refused "a restore before the security-domain upload is refused" "not activated|NotActivated|activate" \
	tresor restore start --hsm-name contoso --storage-resource-uri "$container" \
	--storage-container-SAS-token "$sas" --backup-folder "$folder"

say "Step 3. Build the restore blob offline from 2 of the 3 custodian keys, upload it"
refused "one custodian key is not a quorum" "Insufficient shares" \
	tresor security-domain restore-blob --sd-file contoso-SD.json --sd-exchange-key contoso-exchange.cer \
	--sd-wrapping-keys custodians/cert_1.key --sd-file-restore-blob restore-blob.json
(
	# No server and no credentials: the custodians' keys stay on this machine.
	unset TRESOR_SERVER TRESOR_ACCESS_TOKEN TRESOR_HSM_ACCESS_TOKEN
	tresor security-domain restore-blob --sd-file contoso-SD.json --sd-exchange-key contoso-exchange.cer \
		--sd-wrapping-keys custodians/cert_0.key custodians/cert_2.key --sd-file-restore-blob restore-blob.json
)
tresor security-domain upload --hsm-name contoso --sd-file restore-blob.json --restore-blob \
	--query statusDetails -o tsv | sed 's/^/   /'
check "the new HSM is active" test "$(tresor show --hsm-name contoso \
	--query properties.securityDomainProperties.activationStatus -o tsv)" = Active
refused "a restore without a rollback backup is refused (BackupRequired)" "BackupRequired" \
	tresor restore start --hsm-name contoso --storage-resource-uri "$container" \
	--storage-container-SAS-token "$sas" --backup-folder "$folder"
check "the refused restore changed nothing (one role assignment, the operator's)" test \
	"$(tresor role assignment list --hsm-name contoso --query "[].[principalId, roleName]" -o tsv)" = \
	"$operator	Managed HSM Administrator"

say "Step 4. Back up the new HSM (its rollback point)"
rollback=$(tresor backup start --hsm-name contoso --storage-resource-uri "$container" \
	--storage-container-SAS-token "$sas" --query folderUrl -o tsv)
info "rollback backup: $rollback"

say "Step 5. Restore the source's most recent full backup"
refused "a restore with an expired SAS token fails" "expired|SAS|authenticat" \
	tresor restore start --hsm-name contoso --storage-resource-uri "$container" \
	--storage-container-SAS-token "$(container_sas backups racwdl "$an_hour_ago")" --backup-folder "$folder"
tresor restore start --hsm-name contoso --storage-resource-uri "$container" \
	--storage-container-SAS-token "$sas" --backup-folder "$folder" --query statusDetails -o tsv | sed 's/^/   /'

# ============================================================================
say "Checks"
# The operator gets in with the restored role assignments: they name its
# object id, which the shared issuer gives it in both regions.
record restored
same "keys, versions, attributes and tags are as recorded" recorded/keys.json restored/keys.json
same "role assignments are as recorded (same ids, principals, roles, scopes)" recorded/roles.json restored/roles.json

check "the PS256 signature of payments' first version verifies" test "$(tresor key verify --hsm-name contoso \
	--name payments --version "$payments_v1" -a PS256 --digest "$digest" --signature "$rsa_sig" --query isValid -o tsv)" = true
check "the ES256 signature of signing verifies" test "$(tresor key verify --hsm-name contoso \
	--name signing -a ES256 --digest "$digest" --signature "$ec_sig" --query isValid -o tsv)" = true
check "a changed digest does not verify" test "$(tresor key verify --hsm-name contoso --name signing -a ES256 \
	--digest "$(printf other | openssl dgst -sha256 -binary | openssl base64 -A)" --signature "$ec_sig" --query isValid -o tsv)" = false
check "the RSA-OAEP-256 ciphertext decrypts" test "$(tresor key decrypt --hsm-name contoso --name payments \
	-a RSA-OAEP-256 --value "$rsa_ct" --data-type plaintext --query result -o tsv)" = 'the secret recipe'
check "the A256GCM ciphertext decrypts" test "$(tresor key decrypt --hsm-name contoso --name wrapping \
	-a A256GCM --value "$aes_ct" --iv "$aes_iv" --tag "$aes_tag" --data-type plaintext --query result -o tsv)" = 'the secret recipe'
refused "the disabled key stays disabled" "disabled|Forbidden" \
	tresor key sign --hsm-name contoso --name legacy -a PS256 --digest "$digest"

say "The second principal: object ids name principals, and region B's are new"
# payments-app was a principal of region A's own directory, which is gone. Made
# again in region B it is a new principal with a new object id; the restored
# assignment still names the old one. With a shared external issuer (as the
# operator here) the id stays the same and nothing needs to be done.
tresor principal create --display-name payments-app --query '[objectId, clientId, clientSecret]' -o tsv |
	tr '\t' '\n' >app-b.txt
{ read -r app_b; read -r app_b_client; read -r app_b_secret; } <app-b.txt
info "payments-app in region B: $app_b (in region A it was $app_a)"
check "the restored assignment at /keys/payments names region A's id" grep -q "\"principalId\": \"$app_a\"" restored/roles.json
as_app() {
	env -u TRESOR_ACCESS_TOKEN -u TRESOR_HSM_ACCESS_TOKEN TRESOR_CLIENT_ID="$app_b_client" TRESOR_CLIENT_SECRET="$app_b_secret" \
		TRESOR_CONFIG_DIR="$work/cli-app" "$tresor" "$@"
}
refused "the new payments-app does not inherit it" "Forbidden|permission" \
	as_app key sign --hsm-name contoso --name payments -a PS256 --digest "$digest"
tresor role assignment create --hsm-name contoso --role "Managed HSM Crypto User" \
	--assignee-object-id "$app_b" --scope /keys/payments -o none
info "assigned Managed HSM Crypto User at /keys/payments to $app_b"
check "with its own assignment the new payments-app signs" test "$(as_app key sign --hsm-name contoso \
	--name payments -a PS256 --digest "$digest" --query algorithm -o tsv)" = PS256

say "Result"
info "$((SECONDS - start)) seconds"
if ((failures > 0)); then
	echo "FAIL: $failures check(s) failed"
	exit 1
fi
echo "PASS: every check passed"
