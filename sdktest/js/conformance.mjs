// Conformance of the Azure SDK for JavaScript (@azure/keyvault-keys with
// @azure/identity's ClientSecretCredential) against a running Tresor HSM.
//
// The Go test TestJavaScriptSDK (internal/server) starts the region, creates
// and activates the HSM, grants the principal Crypto User and Crypto Officer
// and runs this script with:
//
//	TRESOR_HSM_URL        https://{name}.{dnsSuffix}:{port}
//	TRESOR_AUTHORITY      the region endpoint (the credential's authorityHost)
//	TRESOR_TENANT_ID, TRESOR_CLIENT_ID, TRESOR_CLIENT_SECRET
//	TRESOR_ADDR           127.0.0.1:{port}: every host under TRESOR_DNS_SUFFIX
//	                      and localhost is dialled there (no /etc/hosts edit)
//	TRESOR_DNS_SUFFIX
//	TRESOR_FIPS           "1" when the server runs in FIPS 140-3 mode
//	NODE_EXTRA_CA_CERTS   the region CA
//	TRESOR_EXPECT         "challenge-mismatch": only check that the SDK
//	                      refuses a challenge whose resource is not the
//	                      HSM's domain (the server advertises another)
//
// The SDK's challenge-resource verification stays on. Any failed check
// exits with status 1 and a message naming it; the secret is never printed.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import dns from "node:dns";

const env = (name) => {
	const v = process.env[name];
	if (!v) {
		console.error(`conformance: ${name} is not set`);
		process.exit(2);
	}
	return v;
};
const hsmURL = env("TRESOR_HSM_URL");
const authority = env("TRESOR_AUTHORITY");
const tenant = env("TRESOR_TENANT_ID");
const clientId = env("TRESOR_CLIENT_ID");
const clientSecret = env("TRESOR_CLIENT_SECRET");
const [addrHost] = env("TRESOR_ADDR").split(":");
const dnsSuffix = env("TRESOR_DNS_SUFFIX").toLowerCase();
const fips = process.env.TRESOR_FIPS === "1";

// {name}.{dnsSuffix} resolves to the test server: glibc does not resolve
// names under .localhost, and the SDK has no resolver option.
const systemLookup = dns.lookup;
dns.lookup = (host, options, callback) => {
	if (typeof options === "function") {
		callback = options;
		options = {};
	}
	const h = String(host).toLowerCase();
	if (h === "localhost" || h === dnsSuffix || h.endsWith("." + dnsSuffix)) {
		return systemLookup(addrHost, options, callback);
	}
	return systemLookup(host, options, callback);
};

const { ClientSecretCredential } = await import("@azure/identity");
const { KeyClient, CryptographyClient } = await import("@azure/keyvault-keys");

const credential = new ClientSecretCredential(tenant, clientId, clientSecret, {
	authorityHost: authority,
	disableInstanceDiscovery: true,
});
const client = new KeyClient(hsmURL, credential, { disableChallengeResourceVerification: false });
const poll = { intervalInMs: 100 };

if (process.env.TRESOR_EXPECT === "challenge-mismatch") {
	try {
		await client.getKey("any");
	} catch (e) {
		if (/challenge resource .* does not match the requested domain/.test(e.message)) {
			console.log("ok   the SDK refuses a challenge for another domain");
			process.exit(0);
		}
		console.error(`FAIL challenge mismatch: unexpected error: ${e.message}`);
		process.exit(1);
	}
	console.error("FAIL challenge mismatch: the SDK followed a challenge for another domain");
	process.exit(1);
}

let step = "start";
const checks = [];
async function check(name, fn) {
	step = name;
	await fn();
	checks.push(name);
	console.log(`ok   ${name}`);
}
async function rejects(what, promise, status) {
	try {
		await promise;
	} catch (e) {
		assert.equal(e.statusCode, status, `${what}: status ${e.statusCode}, want ${status}: ${e.message}`);
		return e;
	}
	assert.fail(`${what}: succeeded, want status ${status}`);
}

const b64url = (b) => Buffer.from(b).toString("base64url");
// publicKey turns the SDK's JsonWebKey into a node KeyObject.
function publicKey(jwk) {
	if (jwk.kty.startsWith("RSA")) {
		return crypto.createPublicKey({ format: "jwk", key: { kty: "RSA", n: b64url(jwk.n), e: b64url(jwk.e) } });
	}
	const crv = { "P-256": "P-256", "P-256K": "secp256k1", "P-384": "P-384", "P-521": "P-521" }[jwk.crv];
	return crypto.createPublicKey({ format: "jwk", key: { kty: "EC", crv, x: b64url(jwk.x), y: b64url(jwk.y) } });
}

const specs = [
	{ name: "rsa2048", kty: "RSA", opts: { keySize: 2048 }, want: "RSA-HSM" },
	{ name: "rsa3072", kty: "RSA-HSM", opts: { keySize: 3072 }, want: "RSA-HSM" },
	{ name: "rsa4096", kty: "RSA-HSM", opts: { keySize: 4096 }, want: "RSA-HSM" },
	{ name: "p256", kty: "EC", opts: { curve: "P-256" }, want: "EC-HSM", sign: ["ES256", "sha256"] },
	{ name: "p256k", kty: "EC-HSM", opts: { curve: "P-256K" }, want: "EC-HSM", sign: ["ES256K", "sha256"], notFIPS: true },
	{ name: "p384", kty: "EC-HSM", opts: { curve: "P-384" }, want: "EC-HSM", sign: ["ES384", "sha384"] },
	{ name: "p521", kty: "EC-HSM", opts: { curve: "P-521" }, want: "EC-HSM", sign: ["ES512", "sha512"] },
	{ name: "aes128", kty: "oct", opts: { keySize: 128 }, want: "oct-HSM", kw: "A128KW" },
	{ name: "aes192", kty: "oct-HSM", opts: { keySize: 192 }, want: "oct-HSM", kw: "A192KW" },
	{ name: "aes256", kty: "oct-HSM", opts: { keySize: 256 }, want: "oct-HSM", kw: "A256KW" },
];
const keys = {};
const msg = Buffer.from("the quick brown fox jumps over the lazy dog");

try {
	await check("create and get every key type", async () => {
		for (const s of specs) {
			const create = client.createKey(s.name, s.kty, { ...s.opts, tags: { spec: s.name } });
			if (fips && s.notFIPS) {
				const e = await rejects(`create ${s.name} in FIPS mode`, create, 400);
				assert.match(e.message, /FIPS/, `create ${s.name} in FIPS mode`);
				continue;
			}
			const k = await create;
			assert.equal(k.keyType, s.want, `create ${s.name}: kty`);
			assert.equal(k.key.d, undefined, `create ${s.name}: private part returned`);
			assert.equal(k.key.k, undefined, `create ${s.name}: symmetric key returned`);
			const got = await client.getKey(s.name);
			assert.equal(got.properties.version, k.properties.version, `get ${s.name}: version`);
			assert.equal(got.properties.tags.spec, s.name, `get ${s.name}: tags`);
			assert.equal(got.properties.recoveryLevel, "CustomizedRecoverable+Purgeable", `get ${s.name}: recoveryLevel`);
			if (s.opts.keySize && s.kty.startsWith("RSA")) {
				assert.equal(got.key.n.length * 8, s.opts.keySize, `get ${s.name}: modulus size`);
			}
			if (s.opts.curve) {
				assert.equal(got.key.crv, s.opts.curve, `get ${s.name}: curve`);
			}
			keys[s.name] = got;
		}
	});

	await check("list with paging", async () => {
		for (let i = 0; i < 12; i++) {
			await client.createKey(`page-${String(i).padStart(2, "0")}`, "EC", { curve: "P-256" });
		}
		const want = Object.keys(keys).length + 12;
		const names = [];
		let pages = 0;
		for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 5 })) {
			pages++;
			assert.ok(page.length <= 5, `page ${pages} has ${page.length} keys, more than maxPageSize 5`);
			names.push(...page.map((p) => p.name));
		}
		assert.equal(names.length, want, `listed ${names.length} keys, want ${want}`);
		assert.equal(new Set(names).size, want, "a key was listed twice");
		assert.ok(pages >= Math.ceil(want / 5), `${pages} pages for ${want} keys of at most 5`);
		let all = 0;
		for await (const p of client.listPropertiesOfKeys()) {
			assert.ok(p.name && p.id, "listed key without name or id");
			all++;
		}
		assert.equal(all, want, "listing without a page size");
	});

	await check("update properties", async () => {
		const k = keys.p256;
		const upd = await client.updateKeyProperties(k.name, k.properties.version, { tags: { stage: "updated" }, enabled: false });
		assert.equal(upd.properties.enabled, false, "enabled after update");
		assert.deepEqual(upd.properties.tags, { stage: "updated" }, "tags after update");
		const digest = crypto.createHash("sha256").update(msg).digest();
		const cc = new CryptographyClient(k.id, credential);
		await rejects("sign with a disabled key", cc.sign("ES256", digest), 403);
		const back = await client.updateKeyProperties(k.name, { enabled: true });
		assert.equal(back.properties.enabled, true, "enabled again");
		assert.deepEqual((await client.getKey(k.name)).properties.tags, { stage: "updated" }, "tags kept");
	});

	await check("sign and verify", async () => {
		const cases = [];
		for (const name of ["rsa2048", "rsa3072", "rsa4096"]) {
			cases.push([name, "RS256", "sha256"], [name, "PS256", "sha256"], [name, "RS512", "sha512"], [name, "PS384", "sha384"]);
		}
		for (const s of specs) {
			if (s.sign && keys[s.name]) cases.push([s.name, ...s.sign]);
		}
		for (const [name, alg, hash] of cases) {
			const k = keys[name];
			const cc = new CryptographyClient(k.id, credential);
			const digest = crypto.createHash(hash).update(msg).digest();
			const { result: sig } = await cc.sign(alg, digest);
			const pub = publicKey(k.key);
			let ok;
			if (alg.startsWith("ES")) {
				ok = crypto.verify(hash, msg, { key: pub, dsaEncoding: "ieee-p1363" }, sig);
			} else {
				const padding = alg.startsWith("PS") ? crypto.constants.RSA_PKCS1_PSS_PADDING : crypto.constants.RSA_PKCS1_PADDING;
				ok = crypto.verify(hash, msg, { key: pub, padding, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO }, sig);
			}
			assert.ok(ok, `${name} ${alg}: the signature does not verify locally`);
			assert.equal((await cc.verify(alg, digest, sig)).result, true, `${name} ${alg}: verify`);
			const bad = Buffer.from(sig);
			bad[Math.floor(bad.length / 3)] ^= 1;
			assert.equal((await cc.verify(alg, digest, bad)).result, false, `${name} ${alg}: a damaged signature verified`);
		}
	});

	await check("encrypt and decrypt", async () => {
		const secret = Buffer.from("0123456789abcdef0123456789abcdef");
		for (const name of ["rsa2048", "rsa3072", "rsa4096"]) {
			const k = keys[name];
			const cc = new CryptographyClient(k.id, credential);
			const enc = await cc.encrypt({ algorithm: "RSA-OAEP-256", plaintext: secret });
			assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result })).result), secret, `${name}: decrypt`);
			const local = crypto.publicEncrypt({ key: publicKey(k.key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, secret);
			assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: local })).result), secret, `${name}: decrypt of a local ciphertext`);
			const bad = Buffer.from(local);
			bad[10] ^= 1;
			await rejects(`${name}: decrypt of a damaged ciphertext`, cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: bad }), 400);
		}
		for (const [name, bits] of [["aes128", 128], ["aes192", 192], ["aes256", 256]]) {
			const cc = new CryptographyClient(keys[name].id, credential);
			const aad = Buffer.from("context");
			const gcm = `A${bits}GCM`;
			const enc = await cc.encrypt({ algorithm: gcm, plaintext: msg, additionalAuthenticatedData: aad });
			assert.ok(enc.iv && enc.authenticationTag, `${name} ${gcm}: no iv or tag`);
			const dec = await cc.decrypt({ algorithm: gcm, ciphertext: enc.result, iv: enc.iv, authenticationTag: enc.authenticationTag, additionalAuthenticatedData: aad });
			assert.deepEqual(Buffer.from(dec.result), msg, `${name} ${gcm}: decrypt`);
			await rejects(`${name} ${gcm}: other aad`, cc.decrypt({ algorithm: gcm, ciphertext: enc.result, iv: enc.iv, authenticationTag: enc.authenticationTag, additionalAuthenticatedData: Buffer.from("other") }), 400);
			const cbc = `A${bits}CBCPAD`;
			const iv = crypto.randomBytes(16);
			const enc2 = await cc.encrypt({ algorithm: cbc, plaintext: msg, iv });
			const dec2 = await cc.decrypt({ algorithm: cbc, ciphertext: enc2.result, iv });
			assert.deepEqual(Buffer.from(dec2.result), msg, `${name} ${cbc}: decrypt`);
		}
	});

	await check("wrap and unwrap", async () => {
		const cek = crypto.randomBytes(32);
		for (const [name, alg] of [["rsa2048", "RSA-OAEP-256"], ["rsa4096", "RSA-OAEP-256"], ["aes128", "A128KW"], ["aes192", "A192KW"], ["aes256", "A256KW"]]) {
			const cc = new CryptographyClient(keys[name].id, credential);
			const w = await cc.wrapKey(alg, cek);
			assert.notDeepEqual(Buffer.from(w.result), cek, `${name} ${alg}: wrapped key is the key`);
			assert.deepEqual(Buffer.from((await cc.unwrapKey(alg, w.result)).result), cek, `${name} ${alg}: unwrap`);
		}
		// AES key wrap (RFC 3394) against node's own: the wrapped bytes agree.
		const kek = crypto.randomBytes(32);
		const imported = await client.importKey("imported-kek", { kty: "oct-HSM", k: kek, keyOps: ["wrapKey", "unwrapKey"] });
		assert.equal(imported.key.k, undefined, "import returned the key");
		const cc = new CryptographyClient(imported.id, credential);
		const w = await cc.wrapKey("A256KW", cek);
		const c = crypto.createCipheriv("id-aes256-wrap", kek, Buffer.from("A6A6A6A6A6A6A6A6", "hex"));
		const local = Buffer.concat([c.update(cek), c.final()]);
		assert.deepEqual(Buffer.from(w.result), local, "A256KW differs from node's AES key wrap");
	});

	await check("rotate", async () => {
		const before = keys.rsa2048;
		const rotated = await client.rotateKey(before.name);
		assert.notEqual(rotated.properties.version, before.properties.version, "rotate kept the version");
		assert.equal(rotated.keyType, "RSA-HSM", "rotated kty");
		assert.notDeepEqual(Buffer.from(rotated.key.n), Buffer.from(before.key.n), "rotate kept the key material");
		assert.equal((await client.getKey(before.name)).properties.version, rotated.properties.version, "the latest version is the rotated one");
		const versions = [];
		for await (const v of client.listPropertiesOfKeyVersions(before.name)) versions.push(v.version);
		assert.deepEqual(new Set(versions), new Set([before.properties.version, rotated.properties.version]), "versions");
		// The old version still decrypts what it encrypted.
		const old = new CryptographyClient(before.id, credential);
		const enc = await old.encrypt({ algorithm: "RSA-OAEP-256", plaintext: msg });
		assert.deepEqual(Buffer.from((await old.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result })).result), msg, "old version decrypts");
		keys.rsa2048 = rotated;
	});

	await check("soft delete, recover and purge", async () => {
		const name = "p384";
		const deleted = await (await client.beginDeleteKey(name, poll)).pollUntilDone();
		assert.equal(deleted.name, name, "deleted key name");
		assert.ok(deleted.properties.recoveryId && deleted.properties.scheduledPurgeDate, "deleted key without recoveryId or purge date");
		await rejects("get a deleted key", client.getKey(name), 404);
		assert.equal((await client.getDeletedKey(name)).name, name, "getDeletedKey");
		const listed = [];
		for await (const d of client.listDeletedKeys()) listed.push(d.name);
		assert.ok(listed.includes(name), "listDeletedKeys lacks the key");
		const recovered = await (await client.beginRecoverDeletedKey(name, poll)).pollUntilDone();
		assert.equal(recovered.properties.version, keys[name].properties.version, "recovered version");
		await rejects("getDeletedKey after recover", client.getDeletedKey(name), 404);
		await (await client.beginDeleteKey(name, poll)).pollUntilDone();
		await client.purgeDeletedKey(name);
		await rejects("getDeletedKey after purge", client.getDeletedKey(name), 404);
		await rejects("get after purge", client.getKey(name), 404);
		delete keys[name];
	});

	await check("backup and restore one key", async () => {
		const k = keys.rsa3072;
		const blob = await client.backupKey(k.name);
		assert.ok(blob && blob.length > 0, "empty backup");
		await rejects("restore over an existing key", client.restoreKeyBackup(blob), 409);
		await (await client.beginDeleteKey(k.name, poll)).pollUntilDone();
		await client.purgeDeletedKey(k.name);
		const restored = await client.restoreKeyBackup(blob);
		assert.equal(restored.name, k.name, "restored name");
		assert.equal(restored.properties.version, k.properties.version, "restored version");
		assert.deepEqual(Buffer.from(restored.key.n), Buffer.from(k.key.n), "restored key material");
		const digest = crypto.createHash("sha256").update(msg).digest();
		const { result: sig } = await new CryptographyClient(restored.id, credential).sign("PS256", digest);
		const ok = crypto.verify("sha256", msg, { key: publicKey(k.key), padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO }, sig);
		assert.ok(ok, "the restored key does not sign as the original");
		const damaged = Buffer.from(blob);
		damaged[Math.floor(damaged.length / 2)] ^= 1;
		await rejects("restore of a damaged backup", client.restoreKeyBackup(damaged), 400);
	});
} catch (e) {
	console.error(`FAIL ${step}: ${e.message}`);
	if (e.statusCode) console.error(`     status ${e.statusCode}, code ${e.code}`);
	process.exit(1);
}
console.log(`conformance: ${checks.length} checks passed`);
