package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"tresor/internal/blob"
	"tresor/internal/blob/container"
	"tresor/internal/client"
	"tresor/internal/securitydomain"
	"tresor/internal/wire"
)

// The steps of a restore drill, in the order they run.

// readManifest reads the clear header of the folder's manifest from the
// container, on this machine; the restore authenticates it later.
func (d *drill) readManifest(ctx context.Context) (string, error) {
	containerURI, path, err := container.Resolve(d.fl.storage.containerURI(), d.fl.folder)
	if err != nil {
		return "", err
	}
	if !backupFolderName.MatchString(lastSegment(path)) {
		return "", fmt.Errorf("%q is not a backup folder name (mhsm-{name}-{yyyyMMddHHmmssff})", d.fl.folder)
	}
	d.contURI = containerURI
	if d.store, err = container.Open(ctx, containerURI, d.fl.storage.token); err != nil {
		return "", err
	}
	if i := strings.LastIndex(path, "/"); i >= 0 {
		d.prefix = path[:i+1]
	}
	data, err := d.store.Get(ctx, path+"/"+backupManifestName, maxManifestSize)
	if errors.Is(err, blob.ErrNotFound) {
		objs, lerr := d.store.List(ctx, path+"/")
		if lerr != nil {
			return "", lerr
		}
		if len(objs) == 0 {
			return "", fmt.Errorf("the folder %s does not exist in the container", d.fl.folder)
		}
		return "", fmt.Errorf("the folder %s has no manifest: the backup did not complete (%s, no %s)", d.fl.folder, count(len(objs), "object"), backupManifestName)
	}
	if err != nil {
		return "", blobHint(err)
	}
	var h manifestHeader
	if err := json.Unmarshal(data, &h); err != nil || h.Format != backupFormat {
		return "", fmt.Errorf("the manifest of %s is not a %s manifest", d.fl.folder, backupFormat)
	}
	if h.Folder != lastSegment(path) {
		return "", fmt.Errorf("the manifest of %s names another folder, %q", d.fl.folder, h.Folder)
	}
	d.header = h
	for name, n := range map[string]int{"keys": h.Keys, "deletedKeys": h.DeletedKeys, "versions": h.Versions,
		"roleAssignments": h.RoleAssignments, "roleDefinitions": h.RoleDefinitions} {
		d.rep.Counts[name] = drillPair{Expected: n}
	}
	return fmt.Sprintf("backup of %s made %s: %s, %s, %s, %s, %s (clear header, authenticated by the restore)",
		h.SourceHSM, h.Created.UTC().Format(time.RFC3339), count(h.Keys, "key"), count(h.DeletedKeys, "deleted key"),
		count(h.Versions, "version"), count(h.RoleAssignments, "role assignment"), count(h.RoleDefinitions, "custom role")), nil
}

// count says n things in words: "1 key", "2 keys".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// createScratch creates the scratch HSM with the signed-in principal as
// its administrator.
func (d *drill) createScratch(ctx context.Context) (string, error) {
	acct, err := d.c.Account(ctx)
	if err != nil {
		return "", err
	}
	d.oid = acct.ObjectID
	d.location = d.fl.location
	if d.location == "" {
		r, err := d.c.Region(ctx)
		if err != nil {
			return "", err
		}
		d.location = r.Region
	}
	soft, purgeProtection, retention := true, false, drillRetentionDays
	body := wire.ManagedHSM{
		Location: d.location,
		SKU:      &wire.SKU{Family: "B", Name: "Standard_B1"},
		Tags:     map[string]string{"tresor-drill": d.fl.folder},
		Properties: wire.ManagedHSMProps{
			InitialAdminObjectIDs:     []string{d.oid},
			EnableSoftDelete:          &soft,
			SoftDeleteRetentionInDays: &retention,
			EnablePurgeProtection:     &purgeProtection,
			CreateMode:                "default",
		},
	}
	_, err = d.c.CreateHSM(ctx, d.fl.resourceGroup, d.fl.scratch, body)
	var ce *client.Error
	// A refusal leaves nothing behind (and a name in use is someone
	// else's HSM); any other failure may have created it.
	d.created = err == nil || !errors.As(err, &ce)
	if err != nil {
		return "", err
	}
	if d.hsmURL, err = d.c.HSMURL(ctx, d.fl.scratch); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s in resource group %s, location %s, administrator %s, retention %d days",
		d.fl.scratch, d.fl.resourceGroup, d.location, d.oid, drillRetentionDays), nil
}

func (d *drill) initRecovery(ctx context.Context) (string, error) {
	der, err := d.c.SecurityDomainTransferKey(ctx, d.hsmURL)
	if err != nil {
		return "", err
	}
	if _, err := securitydomain.ParseCertificate(der); err != nil {
		return "", fmt.Errorf("the scratch HSM's exchange certificate is not usable: %s", trimSD(err))
	}
	d.exchange = securitydomain.CertificatePEM(der)
	return "the scratch HSM is in recovery mode; exchange certificate received", nil
}

// buildBlob builds the upload blob here, as restore-blob does: the
// custodians' private keys never leave this machine.
func (d *drill) buildBlob(context.Context) (string, error) {
	in := d.fl.sd
	in.exchangeCert = "(the scratch HSM's exchange certificate)"
	in.exchangePEM = d.exchange
	b, err := buildRestoreBlob(in)
	if err != nil {
		return "", err
	}
	d.upload = b
	return fmt.Sprintf("security domain %s opened with %s, re-encrypted to the exchange certificate", in.sdFile, count(len(in.wrappingKeys), "custodian key")), nil
}

func (d *drill) uploadSD(ctx context.Context) (string, error) {
	first, op, err := d.c.BeginUploadSecurityDomain(ctx, d.hsmURL, d.upload)
	clear(d.upload)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(first.Status, client.SecurityDomainFailed) {
		return "", &client.Error{Status: http.StatusAccepted, Code: "SecurityDomainUploadFailed", Message: first.StatusDetails}
	}
	wctx, cancel := context.WithTimeout(ctx, sdWaitTimeout)
	defer cancel()
	st, err := op.Wait(wctx, nil)
	if err != nil {
		return "", err
	}
	return oneLine(st.Status + ": " + st.StatusDetails), nil
}

// waitActive waits until the control plane shows the scratch HSM Active.
func (d *drill) waitActive(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, sdWaitTimeout)
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		h, err := d.c.GetHSM(ctx, d.fl.resourceGroup, d.fl.scratch)
		if err != nil {
			return "", err
		}
		var status string
		if p := h.Properties.SecurityDomainProperties; p != nil {
			status = p.ActivationStatus
		}
		switch status {
		case "Active":
			return "activationStatus Active", nil
		case "Failed":
			return "", fmt.Errorf("activationStatus Failed: %s", h.Properties.StatusMessage)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("the scratch HSM is still %s: %w", status, ctx.Err())
		case <-t.C:
		}
	}
}

// rollbackBackup takes the full backup of the scratch HSM that a full
// restore requires, into the same container.
func (d *drill) rollbackBackup(ctx context.Context) (string, error) {
	op, err := d.c.BeginBackup(ctx, d.hsmURL, d.fl.storage.sasParameter())
	if err != nil {
		return "", err
	}
	err = op.Wait(ctx, nil)
	if u := op.Status().AzureStorageBlobContainerURI; u != nil {
		d.rollback = lastSegment(strings.TrimRight(*u, "/"))
	}
	if err != nil {
		return "", err
	}
	return "folder " + d.rollback, nil
}

func (d *drill) restore(ctx context.Context) (string, error) {
	op, err := d.c.BeginRestore(ctx, d.hsmURL, wire.RestoreOperationParameters{
		SASTokenParameters: d.fl.storage.sasParameter(), FolderToRestore: d.fl.folder})
	if err != nil {
		return "", err
	}
	err = op.Wait(ctx, nil)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusForbidden && !op.Done() {
		// The drill held restore/status/action in the scratch HSM when the
		// job began; a full restore changes the role assignments only in
		// the command that also records it Succeeded, so losing the right
		// means the restore went through.
		return "Succeeded (the restored role assignments no longer let the drill read the job's status)", nil
	}
	if err != nil {
		return "", err
	}
	st := op.Status()
	detail := st.Status
	if st.StatusDetails != nil && *st.StatusDetails != "" {
		detail += ": " + *st.StatusDetails
	}
	return oneLine(detail), nil
}

// forbidden reports whether err is the server's 403.
func forbidden(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == http.StatusForbidden
}

// withRole runs call; if the server refuses it (403) and the drill has not
// yet assigned itself role, it does so at "/" and runs call again. action
// names what call needs, for the message when the drill cannot get it.
func (d *drill) withRole(ctx context.Context, role drillRole, action string, call func() error) error {
	err := call()
	if !forbidden(err) || d.granted[role.guid] {
		if forbidden(err) {
			return fmt.Errorf("the drill principal %s may not %s in the restored HSM even with %s: %s", d.oid, action, role.name, drillErrorText(err))
		}
		return err
	}
	_, gerr := d.c.CreateRoleAssignment(ctx, d.hsmURL, "/", newRBACGUID(), client.RoleDefinitionIDPrefix+role.guid, d.oid)
	if forbidden(gerr) {
		return fmt.Errorf("the role assignments restored from the backup do not let the drill principal %s %s, nor assign itself %s (roleAssignments/write/action): "+
			"assign the principal %s (or a role that may assign roles, such as Managed HSM Administrator) at / in the source HSM and back it up again",
			d.oid, action, role.name, role.name)
	}
	if gerr != nil {
		return fmt.Errorf("assigning %s to the drill principal: %s", role.name, drillErrorText(gerr))
	}
	d.granted[role.guid] = true
	d.grants = append(d.grants, role.name)
	return call()
}

// verifyPolicy checks the role assignments and custom role definitions
// against the manifest. After a full restore they are the backup's alone:
// the scratch HSM's own administrator assignment is gone, and the drill
// assigns itself roles only after this count.
func (d *drill) verifyPolicy(ctx context.Context) (string, error) {
	as, err := d.c.ListRoleAssignments(ctx, d.hsmURL, "/", "")
	if forbidden(err) {
		return "", fmt.Errorf("the role assignments restored from the backup give the drill principal %s no right to list them (roleAssignments/read/action): "+
			"assign it a role such as Managed HSM Crypto User or Administrator at / in the source HSM and back it up again", d.oid)
	}
	if err != nil {
		return "", err
	}
	defs, err := d.c.ListRoleDefinitions(ctx, d.hsmURL, "/", "")
	if forbidden(err) {
		return "", fmt.Errorf("the role assignments restored from the backup give the drill principal %s no right to list role definitions (roleDefinitions/read/action)", d.oid)
	}
	if err != nil {
		return "", err
	}
	custom := 0
	for _, r := range defs {
		if r.Properties.RoleType == "CustomRole" {
			custom++
		}
	}
	ok := d.found("roleAssignments", len(as))
	ok = d.found("roleDefinitions", custom) && ok
	if !ok {
		return "", d.mismatch("roleAssignments", "roleDefinitions")
	}
	return fmt.Sprintf("%s, %s, as the manifest counts", count(len(as), "role assignment"), count(custom, "custom role definition")), nil
}

// found records a count found in the restored HSM and reports whether it
// is the manifest's.
func (d *drill) found(name string, n int) bool {
	p := d.rep.Counts[name]
	p.Found = &n
	d.rep.Counts[name] = p
	return p.Expected == n
}

// mismatch describes the counts that differ from the manifest's.
func (d *drill) mismatch(names ...string) error {
	var diffs []string
	for _, name := range names {
		p := d.rep.Counts[name]
		if p.Found != nil && *p.Found != p.Expected {
			diffs = append(diffs, fmt.Sprintf("%s: found %d, the manifest counts %d", name, *p.Found, p.Expected))
		}
	}
	return errors.New(strings.Join(diffs, "; "))
}

// verifyKeys checks the numbers of keys, deleted keys and versions. The
// versions of a deleted key cannot be listed: the drill recovers the
// deleted keys in the scratch HSM first.
func (d *drill) verifyKeys(ctx context.Context) (string, error) {
	var active []wire.KeyItem
	if err := d.withRole(ctx, drillCryptoUser, "list keys (keys/read/action)", func() (err error) {
		active, err = d.c.ListKeys(ctx, d.hsmURL, 0)
		return err
	}); err != nil {
		return "", err
	}
	var deleted []wire.DeletedKeyItem
	if err := d.withRole(ctx, drillCryptoOfficer, "list deleted keys (keys/deletedKeys/read/action)", func() (err error) {
		deleted, err = d.c.ListDeletedKeys(ctx, d.hsmURL, 0)
		return err
	}); err != nil {
		return "", err
	}
	d.active = active
	names := make([]string, 0, len(active)+len(deleted))
	for _, k := range active {
		names = append(names, kidName(k.Kid))
	}
	for _, k := range deleted {
		name := kidName(k.Kid)
		if err := d.withRole(ctx, drillCryptoOfficer, "recover deleted keys (keys/deletedKeys/recover/action)", func() error {
			_, err := d.c.RecoverDeletedKey(ctx, d.hsmURL, name)
			return err
		}); err != nil {
			return "", fmt.Errorf("recovering the deleted key %s to count its versions: %w", name, err)
		}
		names = append(names, name)
	}
	versions := 0
	for _, name := range names {
		var vs []wire.KeyItem
		if err := d.withRole(ctx, drillCryptoUser, "list key versions (keys/read/action)", func() (err error) {
			vs, err = d.c.ListKeyVersions(ctx, d.hsmURL, name, 0)
			return err
		}); err != nil {
			return "", fmt.Errorf("listing the versions of %s: %w", name, err)
		}
		versions += len(vs)
	}
	ok := d.found("keys", len(active)+len(deleted))
	ok = d.found("deletedKeys", len(deleted)) && ok
	ok = d.found("versions", versions) && ok
	if !ok {
		return "", d.mismatch("keys", "deletedKeys", "versions")
	}
	detail := fmt.Sprintf("%s (%s), %s, as the manifest counts", count(len(active)+len(deleted), "key"),
		count(len(deleted), "deleted key"), count(versions, "version"))
	if len(deleted) > 0 {
		detail += "; deleted keys recovered in the scratch HSM to count their versions"
	}
	if len(d.grants) > 0 {
		detail += "; the drill assigned itself " + strings.Join(d.grants, " and ") + " at / (after counting role assignments)"
	}
	return detail, nil
}

// kidName returns the key name of a key id, "" if it names none.
func kidName(kid string) string {
	if n := keyNameOf(kid); n != nil {
		return *n
	}
	return ""
}

// verifyCrypto uses one enabled, unexpired key of each key type that the
// restored HSM holds: sign and verify (RSA, EC), wrap and unwrap or
// encrypt and decrypt (AES, or RSA without sign).
func (d *drill) verifyCrypto(ctx context.Context) (string, error) {
	if d.active == nil {
		return "", errors.New("not run: the keys could not be listed")
	}
	keys := slices.Clone(d.active)
	slices.SortFunc(keys, func(x, y wire.KeyItem) int { return cmp.Compare(kidName(x.Kid), kidName(y.Kid)) })
	now := time.Now().Unix()
	done := map[string]string{} // kty → what was tested
	unusable := map[string]bool{}
	var order []string
	for _, k := range keys {
		at := k.Attributes
		if at.Enabled != nil && !*at.Enabled || at.NotBefore != nil && *at.NotBefore > now || at.Expires != nil && *at.Expires <= now {
			continue
		}
		if len(done) == 3 {
			break
		}
		name := kidName(k.Kid)
		var b *wire.KeyBundle
		if err := d.withRole(ctx, drillCryptoUser, "read keys (keys/read/action)", func() (err error) {
			b, err = d.c.GetKey(ctx, d.hsmURL, name, "")
			return err
		}); err != nil {
			return "", fmt.Errorf("reading %s: %w", name, err)
		}
		kty := strings.TrimSuffix(b.Key.Kty, "-HSM")
		if _, ok := done[kty]; ok {
			continue
		}
		what, err := d.useKey(ctx, name, b)
		if err != nil {
			return "", fmt.Errorf("%s key %s: %w", kty, name, err)
		}
		if what == "" {
			unusable[kty] = true
			continue
		}
		done[kty] = what
		order = append(order, kty)
	}
	if len(done) == 0 {
		if len(unusable) > 0 {
			return "no enabled key allows an operation the drill can test", nil
		}
		return "no enabled, unexpired keys to use", nil
	}
	slices.Sort(order)
	parts := make([]string, 0, len(order))
	for _, kty := range order {
		parts = append(parts, kty+": "+done[kty])
	}
	return strings.Join(parts, "; "), nil
}

// drillText is what the drill signs a digest of.
const drillText = "tresor restore drill"

// useKey tests the key and says what it did, or "" if its key_ops allow
// nothing the drill tests.
func (d *drill) useKey(ctx context.Context, name string, b *wire.KeyBundle) (string, error) {
	ops := b.Key.KeyOps
	has := func(a, b string) bool { return slices.Contains(ops, a) && slices.Contains(ops, b) }
	switch strings.TrimSuffix(b.Key.Kty, "-HSM") {
	case "RSA":
		switch {
		case has("sign", "verify"):
			return d.signVerify(ctx, name, "PS256", drillDigest(32))
		case has("encrypt", "decrypt"):
			return d.roundTrip(ctx, name, []string{"RSA-OAEP-256"}, d.c.Encrypt, d.c.Decrypt, "encrypt/decrypt")
		case has("wrapKey", "unwrapKey"):
			return d.roundTrip(ctx, name, []string{"RSA-OAEP-256"}, d.c.WrapKey, d.c.UnwrapKey, "wrap/unwrap")
		}
	case "EC":
		if !has("sign", "verify") {
			return "", nil
		}
		alg, size := map[string]string{"P-256": "ES256", "P-256K": "ES256K", "P-384": "ES384", "P-521": "ES512"}[b.Key.Crv],
			map[string]int{"P-256": 32, "P-256K": 32, "P-384": 48, "P-521": 64}[b.Key.Crv]
		if alg == "" {
			return "", fmt.Errorf("unknown curve %q", b.Key.Crv)
		}
		return d.signVerify(ctx, name, alg, drillDigest(size))
	case "oct":
		switch {
		case has("wrapKey", "unwrapKey"):
			return d.roundTrip(ctx, name, []string{"A256KW", "A192KW", "A128KW"}, d.c.WrapKey, d.c.UnwrapKey, "wrap/unwrap")
		case has("encrypt", "decrypt"):
			return d.roundTrip(ctx, name, []string{"A256GCM", "A192GCM", "A128GCM"}, d.c.Encrypt, d.c.Decrypt, "encrypt/decrypt")
		}
	default:
		return "", fmt.Errorf("unknown key type %q", b.Key.Kty)
	}
	return "", nil
}

// drillDigest returns the SHA-256, -384 or -512 digest of drillText for a
// size of 32, 48 or 64 bytes.
func drillDigest(size int) []byte {
	switch size {
	case 48:
		s := sha512.Sum384([]byte(drillText))
		return s[:]
	case 64:
		s := sha512.Sum512([]byte(drillText))
		return s[:]
	}
	s := sha256.Sum256([]byte(drillText))
	return s[:]
}

func (d *drill) signVerify(ctx context.Context, name, alg string, digest []byte) (string, error) {
	var sig *client.KeyOperationResult
	if err := d.withRole(ctx, drillCryptoUser, "sign (keys/sign/action)", func() (err error) {
		sig, err = d.c.Sign(ctx, d.hsmURL, name, "", alg, digest)
		return err
	}); err != nil {
		return "", err
	}
	var ok bool
	if err := d.withRole(ctx, drillCryptoUser, "verify (keys/verify/action)", func() (err error) {
		ok, err = d.c.Verify(ctx, d.hsmURL, name, "", alg, digest, sig.Value)
		return err
	}); err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("the HSM does not verify its own %s signature", alg)
	}
	return fmt.Sprintf("%s sign/verify with %s", alg, name), nil
}

type keyOpFunc func(ctx context.Context, hsmURL, name, version string, op client.KeyOperation) (*client.KeyOperationResult, error)

// roundTrip encrypts (or wraps) 32 random bytes with the first of algs
// that the key takes and checks that decrypting gives them back.
func (d *drill) roundTrip(ctx context.Context, name string, algs []string, there, back keyOpFunc, what string) (string, error) {
	plain := make([]byte, 32)
	_, _ = rand.Read(plain)
	var lastErr error
	for _, alg := range algs {
		var out *client.KeyOperationResult
		err := d.withRole(ctx, drillCryptoUser, what+" ("+alg+")", func() (err error) {
			out, err = there(ctx, d.hsmURL, name, "", client.KeyOperation{Algorithm: alg, Value: plain})
			return err
		})
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status == http.StatusBadRequest {
			lastErr = err // another key size: try the next algorithm
			continue
		}
		if err != nil {
			return "", err
		}
		var res *client.KeyOperationResult
		if err := d.withRole(ctx, drillCryptoUser, what+" ("+alg+")", func() (err error) {
			res, err = back(ctx, d.hsmURL, name, "", client.KeyOperation{Algorithm: alg, Value: out.Value, IV: out.IV, Tag: out.Tag, AAD: out.AAD})
			return err
		}); err != nil {
			return "", err
		}
		if string(res.Value) != string(plain) {
			return "", fmt.Errorf("%s with %s does not give back what it was given", what, alg)
		}
		return fmt.Sprintf("%s %s with %s", alg, what, name), nil
	}
	return "", lastErr
}
