package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// keyCommand returns the twin of `az keyvault key` for managed HSMs.
//
// The JSON output is az's: key bundles as az's transform_key_output
// prints them (attributes with ISO 8601 dates, the JWK's binary members in
// standard base64 with padding and every member present, null if unset),
// list items as transform_key_list_output, operation results as az's
// encrypt/decrypt transforms and the Python SDK's SignResult and
// VerifyResult, rotation policies as the SDK's KeyRotationPolicy.
func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage keys of a managed HSM and use them",
		Long: `Manage the keys of a managed HSM and use them, like 'az keyvault key'.

Keys need an activated HSM (see 'tresor security-domain download') and a role
that allows the operation, e.g. Managed HSM Crypto User; deleted keys need
Managed HSM Crypto Officer (see 'tresor role assignment create'). Every
command names the HSM with --hsm-name, or takes the full id of the key (or of
the HSM) with --id.`,
		Args: cobra.NoArgs,
	}
	rotation := &cobra.Command{
		Use:   "rotation-policy",
		Short: "Show and update a key's rotation policy",
		Args:  cobra.NoArgs,
	}
	rotation.AddCommand(
		a.keyCallCommand("show", "Show a key's rotation policy", keyRef{}, false,
			func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error) {
				return rotationPolicyOutput(c.GetKeyRotationPolicy(ctx, hsmURL, ref.name))
			}),
		a.keyRotationPolicyUpdateCommand(),
	)
	deleted := keyRef{recoveryID: true} // --id may be a recovery id
	cmd.AddCommand(
		a.keyCreateCommand(),
		a.keyImportCommand(),
		a.keyCallCommand("show", "Show a key's public parts and attributes", keyRef{}, true,
			func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error) {
				return keyBundleOutput(c.GetKey(ctx, hsmURL, ref.name, ref.version))
			}),
		a.keyListCommand(),
		a.keyListVersionsCommand(),
		a.keySetAttributesCommand(),
		a.keyCallCommand("delete", "Delete a key with all its versions (soft delete: it can be recovered until purged)", keyRef{}, false,
			func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error) {
				return deletedKeyBundleOutput(c.DeleteKey(ctx, hsmURL, ref.name))
			}),
		a.keyListDeletedCommand(),
		a.keyCallCommand("show-deleted", "Show a deleted key", deleted, false,
			func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error) {
				return deletedKeyBundleOutput(c.GetDeletedKey(ctx, hsmURL, ref.name))
			}),
		a.keyCallCommand("recover", "Recover a deleted key with all its versions", deleted, false,
			func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error) {
				return keyBundleOutput(c.RecoverDeletedKey(ctx, hsmURL, ref.name))
			}),
		a.keyCallCommand("purge", "Destroy a deleted key for good (refused while purge protection holds)", deleted, false,
			func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error) {
				return nil, c.PurgeDeletedKey(ctx, hsmURL, ref.name)
			}),
		a.keyBackupCommand(),
		a.keyRestoreCommand(),
		a.keyEncryptCommand(),
		a.keyDecryptCommand(),
		a.keySignCommand(),
		a.keyVerifyCommand(),
		a.keyCallCommand("rotate", "Make a new version of a key, of the same type and size", keyRef{}, false,
			func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error) {
				return keyBundleOutput(c.RotateKey(ctx, hsmURL, ref.name))
			}),
		a.keyRandomCommand(),
		rotation,
	)
	return cmd
}

// keyOn completes cmd, a command on the key that ref names: it adds ref's
// flags (with version, --version), then runs as [app.hsmCommand].
func (a *app) keyOn(cmd *cobra.Command, ref *keyRef, version bool, check func(cmd *cobra.Command) error, call hsmCallFunc) *cobra.Command {
	ref.addFlags(cmd, version)
	return a.hsmCommand(cmd, ref, nil, check, call)
}

// keyCallCommand returns a command on the key that ref names that has no
// other flags and makes one call.
func (a *app) keyCallCommand(use, short string, ref keyRef, version bool, call func(ctx context.Context, c *client.Client, hsmURL string, ref *keyRef) (any, error)) *cobra.Command {
	return a.keyOn(&cobra.Command{Use: use, Short: short}, &ref, version, nil,
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return call(ctx, c, hsmURL, &ref)
		})
}

// keyOnHSM completes cmd, a key command that names only the HSM, as
// [app.onHSM]; both --hsm-name and --id are refused as for a key.
func (a *app) keyOnHSM(cmd *cobra.Command, h *hsmTarget, check func(cmd *cobra.Command) error, call hsmCallFunc) *cobra.Command {
	h.conflict = errHSMAndIDKey
	return a.onHSM(cmd, h, nil, check, call)
}

// keyRef names a key: --hsm-name with --name (and --version), or --id.
type keyRef struct {
	hsm, name, version, id string
	withVersion            bool // the command takes --version
	recoveryID             bool // --id may be a recovery id (…/deletedkeys/{name})
	base                   string
}

// addFlags adds --name/-n, --hsm-name, --id and, with version, --version/-v.
func (r *keyRef) addFlags(cmd *cobra.Command, version bool) {
	f := cmd.Flags()
	f.StringVarP(&r.name, "name", "n", "", "name of the key (required unless --id is given)")
	if version {
		r.withVersion = true
		f.StringVarP(&r.version, "version", "v", "", "the key version (default: the current version)")
	}
	hsmNameOrIDFlag(cmd, &r.hsm, "")
	idHelp := "id of the key, https://{hsm}.{dnsSuffix}[:port]/keys/{name}"
	if version {
		idHelp += "[/{version}]"
	}
	if r.recoveryID {
		idHelp += ", or its recovery id …/deletedkeys/{name}"
	}
	f.StringVar(&r.id, "id", "", idHelp+" (instead of --hsm-name and --name)")
}

// check validates the flags before anything is sent.
func (r *keyRef) check(cmd *cobra.Command) error {
	if r.id == "" {
		if r.hsm == "" || r.name == "" {
			usage := "--hsm-name HSM --name/-n NAME"
			if r.withVersion {
				usage += " [--version VERSION]"
			}
			return usagef(cmd, "incorrect usage: --id ID | %s", usage)
		}
		return nil
	}
	if r.hsm != "" {
		return usagef(cmd, "%s", errHSMAndIDKey)
	}
	if r.name != "" || r.version != "" {
		return usagef(cmd, "--id names the key: do not give --name or --version with it")
	}
	base, name, version, err := parseKeyID(r.id, r.recoveryID)
	if err != nil {
		return usagef(cmd, "--id: %v", err)
	}
	if version != "" && !r.withVersion {
		return usagef(cmd, "--id %s names a version, but '%s' works on the whole key: leave the version out", r.id, cmd.CommandPath())
	}
	r.base, r.name, r.version = base, name, version
	return nil
}

// url returns the HSM's base URL.
func (r *keyRef) url(ctx context.Context, c *client.Client) (string, error) {
	if r.base != "" {
		return r.base, nil
	}
	return c.HSMURL(ctx, r.hsm)
}

// kid returns the id of the key (with the version, if one was named).
func (r *keyRef) kid(hsmURL string) string {
	id := strings.TrimRight(hsmURL, "/") + "/keys/" + r.name
	if r.version != "" {
		id += "/" + r.version
	}
	return id
}

// parseKeyID splits a key id, https://{host}/keys/{name}[/{version}] (or,
// with recovery, https://{host}/deletedkeys/{name}), into the HSM's base URL,
// the name and the version.
func parseKeyID(id string, recovery bool) (base, name, version string, err error) {
	u, err := url.Parse(strings.TrimSpace(id))
	if err != nil {
		return "", "", "", err
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", fmt.Errorf("%q is not a key id: want https://{hsm}.{dnsSuffix}[:port]/keys/{name}[/{version}]", id)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && len(parts) <= 3 && parts[0] == "keys" && parts[1] != "":
		name = parts[1]
		if len(parts) == 3 {
			version = parts[2]
		}
	case recovery && len(parts) == 2 && parts[0] == "deletedkeys" && parts[1] != "":
		name = parts[1]
	default:
		return "", "", "", fmt.Errorf("%q is not a key id: want https://{hsm}.{dnsSuffix}[:port]/keys/{name}[/{version}]", id)
	}
	return "https://" + u.Host, name, version, nil
}

// maxResultsVar adds --maxresults of a list command.
func maxResultsVar(cmd *cobra.Command, p *int, what string) {
	cmd.Flags().IntVar(p, "maxresults", 0, "maximum number of "+what+" to return")
}

// checkMaxResults checks --maxresults, if given.
func checkMaxResults(cmd *cobra.Command, max int) error {
	if cmd.Flags().Changed("maxresults") && max < 1 {
		return usagef(cmd, "--maxresults must be at least 1")
	}
	return nil
}

// Values that az checks on its side (its enum types match them in any
// case and send the canonical spelling).
var (
	keyTypes          = []string{"RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM"}
	keyCurves         = []string{"P-256", "P-256K", "P-384", "P-521"}
	keyOperations     = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}
	keyEncryptionAlgs = []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5", "A128GCM", "A192GCM", "A256GCM",
		"A128KW", "A192KW", "A256KW", "A128CBC", "A192CBC", "A256CBC", "A128CBCPAD", "A192CBCPAD", "A256CBCPAD"}
	keySignatureAlgs = []string{"PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "ES256", "ES256K", "ES384", "ES512"}
)

// keyEnum returns the canonical spelling of v among choices, matched in any
// case, or a usage error naming the flag.
func keyEnum(cmd *cobra.Command, flag, v string, choices []string) (string, error) {
	for _, c := range choices {
		if strings.EqualFold(c, v) {
			return c, nil
		}
	}
	return "", usagef(cmd, "argument --%s: invalid choice %q: choose from %s", flag, v, strings.Join(choices, ", "))
}

// keyOps checks --ops.
func keyOps(cmd *cobra.Command, ops []string) ([]string, error) {
	out := make([]string, 0, len(ops))
	for _, op := range ops {
		c, err := keyEnum(cmd, "ops", op, keyOperations)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// keyDateLayouts are the forms az's datetime_type accepts, then RFC 3339.
var keyDateLayouts = []string{"2006-01-02T15:04:05Z", "2006-01-02T15:04Z", "2006-01-02T15Z", "2006-01-02", time.RFC3339}

// keyDate parses a date flag (UTC) to unix seconds.
func keyDate(cmd *cobra.Command, flag, v string) (*int64, error) {
	for _, l := range keyDateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			s := t.Unix()
			return &s, nil
		}
	}
	return nil, usagef(cmd, "argument --%s: Input '%s' not valid. Valid example: 2000-12-31T12:59:59Z", flag, v)
}

// keyDates returns the --expires and --not-before the user gave (nil if not).
func keyDates(cmd *cobra.Command, expires, notBefore string) (exp, nbf *int64, err error) {
	if cmd.Flags().Changed("expires") {
		if exp, err = keyDate(cmd, "expires", expires); err != nil {
			return nil, nil, err
		}
	}
	if cmd.Flags().Changed("not-before") {
		if nbf, err = keyDate(cmd, "not-before", notBefore); err != nil {
			return nil, nil, err
		}
	}
	return exp, nbf, nil
}

// keyAttrFlags are the flags of a new key's attributes (create, import).
type keyAttrFlags struct {
	ops                []string
	tags               []string
	disabled           bool
	exportable         bool
	expires, notBefore string
	protection         string
}

func (k *keyAttrFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&k.ops, "ops", nil, "permitted operations, space-separated: "+strings.Join(keyOperations, ", "))
	f.StringArrayVar(&k.tags, "tags", nil, `space-separated tags "key[=value]"`)
	optBoolVar(f, &k.disabled, "disabled", "create the key disabled")
	optBoolVar(f, &k.exportable, "exportable", "whether the private key can be exported (needs a release policy, which Tresor does not support)")
	f.StringVar(&k.expires, "expires", "", "expiry, UTC (Y-m-d'T'H:M:S'Z')")
	f.StringVar(&k.notBefore, "not-before", "", "not usable before, UTC (Y-m-d'T'H:M:S'Z')")
	f.StringVarP(&k.protection, "protection", "p", "", "software or hsm: a managed HSM keeps every key in the HSM")
	markNargs(f, "ops", "tags")
}

// parse checks the flags and returns key_ops, attributes and tags.
func (k *keyAttrFlags) parse(cmd *cobra.Command) ([]string, *wire.KeyAttributes, map[string]string, error) {
	if k.protection != "" {
		p, err := keyEnum(cmd, "protection", k.protection, []string{"software", "hsm"})
		if err != nil {
			return nil, nil, nil, err
		}
		k.protection = p
	}
	var ops []string
	if cmd.Flags().Changed("ops") {
		var err error
		if ops, err = keyOps(cmd, k.ops); err != nil {
			return nil, nil, nil, err
		}
	}
	tags, err := parseTags(k.tags)
	if err != nil {
		return nil, nil, nil, usagef(cmd, "--tags: %v", err)
	}
	exp, nbf, err := keyDates(cmd, k.expires, k.notBefore)
	if err != nil {
		return nil, nil, nil, err
	}
	enabled := !k.disabled
	attrs := &wire.KeyAttributes{Enabled: &enabled, Expires: exp, NotBefore: nbf}
	if cmd.Flags().Changed("exportable") {
		e := k.exportable
		attrs.Exportable = &e
	}
	return ops, attrs, tags, nil
}

// keyCreateParams maps the flags of key create to the request, as az does:
// kty defaults to EC with --curve and to RSA otherwise; --protection hsm
// adds "-HSM", --protection software refuses an -HSM type.
func keyCreateParams(cmd *cobra.Command, kty, curve string, size int, k *keyAttrFlags) (wire.KeyCreateParameters, error) {
	ops, attrs, tags, err := k.parse(cmd)
	if err != nil {
		return wire.KeyCreateParameters{}, err
	}
	if curve != "" {
		if curve, err = keyEnum(cmd, "curve", curve, keyCurves); err != nil {
			return wire.KeyCreateParameters{}, err
		}
	}
	switch {
	case kty != "":
		if kty, err = keyEnum(cmd, "kty", kty, keyTypes); err != nil {
			return wire.KeyCreateParameters{}, err
		}
	case curve != "":
		kty = "EC"
	default:
		kty = "RSA"
	}
	switch k.protection {
	case "hsm":
		if !strings.HasSuffix(kty, "-HSM") {
			kty += "-HSM"
		}
	case "software":
		if strings.HasSuffix(kty, "-HSM") {
			return wire.KeyCreateParameters{}, usagef(cmd, "The key type %s is invalid for software protected keys. Omit --protection", kty)
		}
	}
	p := wire.KeyCreateParameters{Kty: kty, Curve: curve, KeyOps: ops, Attributes: attrs, Tags: tags}
	if cmd.Flags().Changed("size") {
		p.KeySize = &size
	}
	return p, nil
}

func (a *app) keyCreateCommand() *cobra.Command {
	var (
		ref        keyRef
		attrs      keyAttrFlags
		kty, curve string
		size       int
		p          wire.KeyCreateParameters
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "create",
		Short: "Create a key, or a new version of an existing key",
		Long: `Create a key, or a new version of it if the name exists. A managed HSM keeps
every key in the HSM: RSA, EC and oct are created as RSA-HSM, EC-HSM and oct-HSM.
RSA keys have 2048, 3072 or 4096 bits, EC keys the curve P-256, P-256K, P-384
or P-521, oct (AES) keys 128, 192 or 256 bits.`,
		Example: `  tresor key create --hsm-name ContosoMHSM --name rsa1 --kty RSA-HSM --size 3072
  tresor key create --hsm-name ContosoMHSM --name ec1 --kty EC-HSM --curve P-256 --ops sign verify
  tresor key create --hsm-name ContosoMHSM --name aes1 --kty oct-HSM --size 256 --tags env=test`,
	}, &ref, false,
		func(cmd *cobra.Command) (err error) {
			p, err = keyCreateParams(cmd, kty, curve, size, &attrs)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return keyBundleOutput(c.CreateKey(ctx, hsmURL, ref.name, p))
		})
	f := cmd.Flags()
	f.StringVar(&kty, "kty", "", "key type: "+strings.Join(keyTypes, ", ")+" (default: EC with --curve, else RSA)")
	f.StringVar(&curve, "curve", "", "elliptic curve: "+strings.Join(keyCurves, ", "))
	f.IntVar(&size, "size", 0, "key size in bits: 2048, 3072 or 4096 for RSA; 128, 192 or 256 for oct")
	attrs.addFlags(cmd)
	return cmd
}

// keyImportParams maps the flags of key import to the request.
func keyImportParams(cmd *cobra.Command, pemFile, pemString, password string, k *keyAttrFlags) (wire.KeyImportParameters, error) {
	f := cmd.Flags()
	sources := 0
	for _, s := range []string{"pem-file", "pem-string", "byok-file", "byok-string"} {
		if f.Changed(s) {
			sources++
		}
	}
	if sources != 1 {
		return wire.KeyImportParameters{}, usagef(cmd, "supply exactly one: --byok-file, --byok-string, --pem-file, --pem-string")
	}
	if f.Changed("byok-file") || f.Changed("byok-string") {
		return wire.KeyImportParameters{}, withHint(errors.New("BYOK import (--byok-file, --byok-string) is not supported: Tresor has no key-exchange key"),
			"import the private key in PEM with --pem-file or --pem-string")
	}
	ops, attrs, tags, err := k.parse(cmd)
	if err != nil {
		return wire.KeyImportParameters{}, err
	}
	var data []byte
	if f.Changed("pem-file") {
		if data, err = readInputFile(pemFile); err != nil {
			return wire.KeyImportParameters{}, err
		}
	} else {
		data = []byte(pemString)
	}
	jwk, err := client.PrivateKeyJWK(data, []byte(password))
	switch {
	case errors.Is(err, client.ErrPEMPasswordRequired):
		//lint:ignore ST1005 az's message, word for word
		return wire.KeyImportParameters{}, withHint(fmt.Errorf("Import failed: %v", err), "give the password with --pem-password")
	case err != nil:
		//lint:ignore ST1005 az's message, word for word
		return wire.KeyImportParameters{}, fmt.Errorf("Import failed: %v", err)
	}
	jwk.KeyOps = ops
	p := wire.KeyImportParameters{Key: &jwk, Attributes: attrs, Tags: tags}
	if k.protection != "" {
		hsm := k.protection == "hsm"
		p.HSM = &hsm
	}
	return p, nil
}

func (a *app) keyImportCommand() *cobra.Command {
	var (
		ref                                                keyRef
		attrs                                              keyAttrFlags
		pemFile, pemString, password, byokFile, byokString string
		p                                                  wire.KeyImportParameters
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "import",
		Short: "Import an RSA or EC private key from PEM",
		Long: `Import a private key, or a new version of a key if the name exists, from PEM:
RSA (PKCS#1 or PKCS#8) or EC on P-256, P-256K, P-384 or P-521 (SEC 1 or
PKCS#8). An encrypted key (PKCS#8 with PBES2 and AES-CBC, or legacy PEM
encryption) takes --pem-password. The key is converted to a JSON web key with
its private parts here and sent to the HSM, which checks it.`,
		Example: `  tresor key import --hsm-name ContosoMHSM --name imported1 --pem-file key.pem
  tresor key import --hsm-name ContosoMHSM --name imported2 --pem-file enc.pem --pem-password secret`,
	}, &ref, false,
		func(cmd *cobra.Command) (err error) {
			if cmd.Flags().Changed("pem-password") && !cmd.Flags().Changed("pem-file") && !cmd.Flags().Changed("pem-string") {
				return usagef(cmd, "--pem-password must be used with --pem-file or --pem-string")
			}
			p, err = keyImportParams(cmd, pemFile, pemString, password, &attrs)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return keyBundleOutput(c.ImportKey(ctx, hsmURL, ref.name, p))
		})
	f := cmd.Flags()
	f.StringVar(&pemFile, "pem-file", "", "PEM file containing the private key to import")
	f.StringVar(&pemString, "pem-string", "", "PEM string containing the private key to import")
	f.StringVar(&password, "pem-password", "", "password of an encrypted PEM private key")
	f.StringVar(&byokFile, "byok-file", "", "not supported: BYOK needs a key-exchange key")
	f.StringVar(&byokString, "byok-string", "", "not supported: BYOK needs a key-exchange key")
	attrs.addFlags(cmd)
	return cmd
}

func (a *app) keyListCommand() *cobra.Command {
	var (
		h              hsmTarget
		max            int
		includeManaged bool
	)
	cmd := a.keyOnHSM(&cobra.Command{
		Use:   "list",
		Short: "List the keys of a managed HSM (their current versions)",
	}, &h,
		func(cmd *cobra.Command) error { return checkMaxResults(cmd, max) },
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			items, err := c.ListKeys(ctx, hsmURL, max)
			if err != nil {
				return nil, err
			}
			if !includeManaged {
				items = slices.DeleteFunc(items, func(it wire.KeyItem) bool { return it.Managed != nil && *it.Managed })
			}
			return listOf(items, keyItemOutput), nil
		})
	maxResultsVar(cmd, &max, "keys")
	optBoolVar(cmd.Flags(), &includeManaged, "include-managed", "include managed keys (those backing certificates)")
	return cmd
}

func (a *app) keyListVersionsCommand() *cobra.Command {
	var (
		ref keyRef
		max int
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "list-versions",
		Short: "List the versions of a key",
	}, &ref, false,
		func(cmd *cobra.Command) error { return checkMaxResults(cmd, max) },
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			items, err := c.ListKeyVersions(ctx, hsmURL, ref.name, max)
			return listOf(items, keyItemOutput), err
		})
	maxResultsVar(cmd, &max, "versions")
	return cmd
}

// keyUpdateFromFlags maps the flags of set-attributes to the update.
func keyUpdateFromFlags(cmd *cobra.Command, enabled bool, expires, notBefore string, ops, tags []string) (client.KeyUpdate, error) {
	f := cmd.Flags()
	var u client.KeyUpdate
	var attrs wire.KeyAttributes
	changed := false
	if f.Changed("enabled") {
		e := enabled
		attrs.Enabled, changed = &e, true
	}
	exp, nbf, err := keyDates(cmd, expires, notBefore)
	if err != nil {
		return u, err
	}
	if exp != nil || nbf != nil {
		attrs.Expires, attrs.NotBefore, changed = exp, nbf, true
	}
	if changed {
		u.Attributes = &attrs
	}
	if f.Changed("ops") {
		if u.KeyOps, err = keyOps(cmd, ops); err != nil {
			return u, err
		}
	}
	if f.Changed("tags") {
		if u.Tags, err = parseTags(tags); err != nil {
			return u, usagef(cmd, "--tags: %v", err)
		}
	}
	return u, nil
}

func (a *app) keySetAttributesCommand() *cobra.Command {
	var (
		ref                keyRef
		enabled            bool
		expires, notBefore string
		ops, tags          []string
		u                  client.KeyUpdate
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "set-attributes",
		Short: "Change a key version's attributes, operations and tags",
		Long: `Change the attributes (enabled, expiry, not-before), the permitted operations
and the tags of a version of a key (default: the current version). What is not
given stays as it is; --tags "" removes every tag.`,
		Example: `  tresor key set-attributes --hsm-name ContosoMHSM --name rsa1 --enabled false
  tresor key set-attributes --hsm-name ContosoMHSM --name rsa1 --ops sign verify --tags env=prod`,
	}, &ref, true,
		func(cmd *cobra.Command) (err error) {
			u, err = keyUpdateFromFlags(cmd, enabled, expires, notBefore, ops, tags)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return keyBundleOutput(c.UpdateKey(ctx, hsmURL, ref.name, ref.version, u))
		})
	f := cmd.Flags()
	optBoolVar(f, &enabled, "enabled", "enable or disable the key")
	f.StringVar(&expires, "expires", "", "expiry, UTC (Y-m-d'T'H:M:S'Z')")
	f.StringVar(&notBefore, "not-before", "", "not usable before, UTC (Y-m-d'T'H:M:S'Z')")
	f.StringArrayVar(&ops, "ops", nil, "permitted operations, space-separated: "+strings.Join(keyOperations, ", "))
	f.StringArrayVar(&tags, "tags", nil, `space-separated tags "key[=value]"; "" removes all`)
	markNargs(f, "ops", "tags")
	return cmd
}

func (a *app) keyListDeletedCommand() *cobra.Command {
	var (
		h   hsmTarget
		max int
	)
	cmd := a.keyOnHSM(&cobra.Command{
		Use:   "list-deleted",
		Short: "List the deleted keys that can still be recovered or purged",
	}, &h,
		func(cmd *cobra.Command) error { return checkMaxResults(cmd, max) },
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			items, err := c.ListDeletedKeys(ctx, hsmURL, max)
			return listOf(items, deletedKeyItemOutput), err
		})
	maxResultsVar(cmd, &max, "keys")
	return cmd
}

func (a *app) keyBackupCommand() *cobra.Command {
	var (
		ref  keyRef
		file string
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "backup",
		Short: "Back up a key with all its versions to a file",
		Long: `Write a key's backup, all its versions with their attributes and tags, sealed
under the HSM's security domain, to --file: the blob's bytes, as az writes
them. It restores ('tresor key restore') into any HSM holding the same
security domain. An existing file is never overwritten.`,
		Example: `  tresor key backup --hsm-name ContosoMHSM --name rsa1 --file rsa1.backup`,
	}, &ref, false,
		func(cmd *cobra.Command) error {
			if file == "" {
				return usagef(cmd, "--file is required: the file to write the backup to")
			}
			return checkNewFile(file)
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			blob, err := c.BackupKey(ctx, hsmURL, ref.name)
			if err != nil {
				return nil, err
			}
			return nil, writeNewFile(file, blob, secretFileMode)
		})
	cmd.Flags().StringVarP(&file, "file", "f", "", "the file to write the backup to; must not exist (required)")
	return cmd
}

func (a *app) keyRestoreCommand() *cobra.Command {
	var (
		h    hsmTarget
		file string
		blob []byte
	)
	cmd := a.keyOnHSM(&cobra.Command{
		Use:   "restore",
		Short: "Restore a key from a backup file",
		Long: `Restore a key, with all its versions, from a file that 'tresor key backup'
(or az keyvault key backup) wrote. The HSM must hold the security domain the
backup was made under, and no key of that name may exist, deleted or not.`,
		Example: `  tresor key restore --hsm-name ContosoMHSM --file rsa1.backup`,
	}, &h,
		func(cmd *cobra.Command) (err error) {
			if file == "" {
				return usagef(cmd, "--file is required: the backup file")
			}
			if blob, err = readInputFile(file); err != nil {
				return err
			}
			if len(blob) == 0 {
				return fmt.Errorf("the backup file %s is empty", file)
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return keyBundleOutput(c.RestoreKey(ctx, hsmURL, blob))
		})
	cmd.Flags().StringVarP(&file, "file", "f", "", "the backup file (required)")
	return cmd
}

// keyDecodeB64 decodes standard or URL-safe base64, with or without
// padding, as az's (lenient) b64decode does.
func keyDecodeB64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	t := strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(t); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(t)
}

// keyHexFlag decodes a hex flag (az's --iv, --aad and --tag); nil if unset.
func keyHexFlag(cmd *cobra.Command, flag, v string) ([]byte, error) {
	if !cmd.Flags().Changed(flag) {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, usagef(cmd, "--%s %q is not hexadecimal", flag, v)
	}
	return b, nil
}

// Data types of encrypt's --value and decrypt's result.
const (
	keyDataBase64    = "base64"
	keyDataPlaintext = "plaintext"
)

// keyCryptoFlags are the flags of encrypt and decrypt.
type keyCryptoFlags struct {
	alg, value, dataType, iv, aad, tag string
}

func (k *keyCryptoFlags) addFlags(cmd *cobra.Command, decrypt bool) {
	f := cmd.Flags()
	f.StringVarP(&k.alg, "algorithm", "a", "", "algorithm: "+strings.Join(keyEncryptionAlgs, ", ")+" (required)")
	if decrypt {
		f.StringVar(&k.value, "value", "", "the ciphertext, base64 (the result of encrypt) (required)")
		f.StringVar(&k.dataType, "data-type", keyDataBase64, "how to print the plaintext: base64 or plaintext (UTF-8 text)")
		f.StringVar(&k.iv, "iv", "", "the initialization vector, hex (AES)")
		f.StringVar(&k.aad, "aad", "", "additional authenticated data, hex (AES-GCM)")
		f.StringVar(&k.tag, "tag", "", "the authentication tag, hex (AES-GCM)")
		return
	}
	f.StringVar(&k.value, "value", "", "the value to encrypt, base64 (or text with --data-type plaintext) (required)")
	f.StringVar(&k.dataType, "data-type", keyDataBase64, "the type of --value: base64 or plaintext")
	f.StringVar(&k.iv, "iv", "", "the initialization vector, hex (AES-CBC and CBCPAD only)")
	f.StringVar(&k.aad, "aad", "", "additional authenticated data, hex (AES-GCM)")
}

// parse checks the flags and returns the operation and the data type.
func (k *keyCryptoFlags) parse(cmd *cobra.Command, decrypt bool) (client.KeyOperation, string, error) {
	var op client.KeyOperation
	if k.alg == "" {
		return op, "", usagef(cmd, "--algorithm is required: %s", strings.Join(keyEncryptionAlgs, ", "))
	}
	alg, err := keyEnum(cmd, "algorithm", k.alg, keyEncryptionAlgs)
	if err != nil {
		return op, "", err
	}
	if !cmd.Flags().Changed("value") {
		return op, "", usagef(cmd, "--value is required")
	}
	dataType, err := keyEnum(cmd, "data-type", k.dataType, []string{keyDataBase64, keyDataPlaintext})
	if err != nil {
		return op, "", err
	}
	op.Algorithm = alg
	if !decrypt && dataType == keyDataPlaintext {
		op.Value = []byte(k.value)
	} else if op.Value, err = keyDecodeB64(k.value); err != nil {
		return op, "", usagef(cmd, "--value is not base64")
	}
	if op.IV, err = keyHexFlag(cmd, "iv", k.iv); err != nil {
		return op, "", err
	}
	if op.AAD, err = keyHexFlag(cmd, "aad", k.aad); err != nil {
		return op, "", err
	}
	if decrypt {
		if op.Tag, err = keyHexFlag(cmd, "tag", k.tag); err != nil {
			return op, "", err
		}
	}
	return op, dataType, nil
}

// keyEncryptOut is az's encrypt result: the ciphertext in base64, the IV,
// tag and AAD in hex.
type keyEncryptOut struct {
	AAD       *string `json:"aad"`
	Algorithm string  `json:"algorithm"`
	IV        *string `json:"iv"`
	Kid       string  `json:"kid"`
	Result    string  `json:"result"`
	Tag       *string `json:"tag"`
}

// keyDecryptOut is az's decrypt result.
type keyDecryptOut struct {
	Algorithm string `json:"algorithm"`
	Kid       string `json:"kid"`
	Result    string `json:"result"`
}

func hexOrNil(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hex.EncodeToString(b)
	return &s
}

func (a *app) keyEncryptCommand() *cobra.Command {
	var (
		ref keyRef
		k   keyCryptoFlags
		op  client.KeyOperation
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "encrypt",
		Short: "Encrypt data with a key",
		Long: `Encrypt --value with a key: RSA-OAEP, RSA-OAEP-256 or RSA1_5 with an RSA key;
AES-GCM (the HSM makes the IV and returns it with the tag), AES-CBC or CBCPAD
(give --iv) with an oct key. Prints the ciphertext in base64 and the IV, tag
and AAD in hex, as az does.`,
		Example: `  tresor key encrypt --hsm-name ContosoMHSM --name rsa1 --algorithm RSA-OAEP-256 --value "hello" --data-type plaintext
  tresor key encrypt --hsm-name ContosoMHSM --name aes1 --algorithm A256GCM --value aGVsbG8= --aad 0102`,
	}, &ref, true,
		func(cmd *cobra.Command) (err error) {
			op, _, err = k.parse(cmd, false)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			r, err := c.Encrypt(ctx, hsmURL, ref.name, ref.version, op)
			if err != nil {
				return nil, err
			}
			return keyEncryptOut{AAD: hexOrNil(r.AAD), Algorithm: op.Algorithm, IV: hexOrNil(r.IV), Kid: keyResultID(r.Kid, &ref, hsmURL),
				Result: base64.StdEncoding.EncodeToString(r.Value), Tag: hexOrNil(r.Tag)}, nil
		})
	k.addFlags(cmd, false)
	return cmd
}

func (a *app) keyDecryptCommand() *cobra.Command {
	var (
		ref      keyRef
		k        keyCryptoFlags
		op       client.KeyOperation
		dataType string
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "decrypt",
		Short: "Decrypt data with a key",
		Long: `Decrypt --value (base64, as encrypt printed it) with a key. AES takes the IV,
and AES-GCM the tag and the AAD, in hex as encrypt printed them. The plaintext
is printed in base64, or as text with --data-type plaintext.`,
		Example: `  tresor key decrypt --hsm-name ContosoMHSM --name rsa1 --algorithm RSA-OAEP-256 --value <base64> --data-type plaintext`,
	}, &ref, true,
		func(cmd *cobra.Command) (err error) {
			op, dataType, err = k.parse(cmd, true)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			r, err := c.Decrypt(ctx, hsmURL, ref.name, ref.version, op)
			if err != nil {
				return nil, err
			}
			out := keyDecryptOut{Algorithm: op.Algorithm, Kid: keyResultID(r.Kid, &ref, hsmURL), Result: base64.StdEncoding.EncodeToString(r.Value)}
			if dataType == keyDataPlaintext {
				if !utf8.Valid(r.Value) {
					return nil, withHint(errors.New("the plaintext is not UTF-8 text"), "use --data-type base64")
				}
				out.Result = string(r.Value)
			}
			return out, nil
		})
	k.addFlags(cmd, true)
	return cmd
}

// keyResultID is the key id an operation result names: the service's (with
// the version it used), else the one the command addressed.
func keyResultID(kid string, ref *keyRef, hsmURL string) string {
	if kid != "" {
		return kid
	}
	return ref.kid(hsmURL)
}

// keySignOut is the Python SDK's SignResult as az prints it.
type keySignOut struct {
	Algorithm string `json:"algorithm"`
	KeyID     string `json:"keyId"`
	Signature string `json:"signature"`
}

// keyVerifyOut is the Python SDK's VerifyResult as az prints it.
type keyVerifyOut struct {
	Algorithm string `json:"algorithm"`
	IsValid   bool   `json:"isValid"`
	KeyID     string `json:"keyId"`
}

// keySignFlags are --algorithm and --digest of sign and verify.
type keySignFlags struct {
	alg, digest string
}

// addFlags adds the flags; digestHelp says what --digest is.
func (k *keySignFlags) addFlags(cmd *cobra.Command, digestHelp string) {
	f := cmd.Flags()
	f.StringVarP(&k.alg, "algorithm", "a", "", "algorithm: "+strings.Join(keySignatureAlgs, ", ")+" (required)")
	f.StringVar(&k.digest, "digest", "", digestHelp+", base64 (required)")
}

// parse checks the flags and returns the algorithm and the digest.
func (k *keySignFlags) parse(cmd *cobra.Command) (string, []byte, error) {
	if k.alg == "" {
		return "", nil, usagef(cmd, "--algorithm is required: %s", strings.Join(keySignatureAlgs, ", "))
	}
	alg, err := keyEnum(cmd, "algorithm", k.alg, keySignatureAlgs)
	if err != nil {
		return "", nil, err
	}
	if k.digest == "" {
		return "", nil, usagef(cmd, "--digest is required: the digest to sign, base64")
	}
	d, err := keyDecodeB64(k.digest)
	if err != nil {
		return "", nil, usagef(cmd, "--digest is not base64")
	}
	return alg, d, nil
}

func (a *app) keySignCommand() *cobra.Command {
	var (
		ref    keyRef
		k      keySignFlags
		alg    string
		digest []byte
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "sign",
		Short: "Sign a digest with a key",
		Long: `Sign --digest, a hash of the message in base64, with an RSA or EC key. The
digest's length must match the algorithm: 32 bytes for RS256, PS256, ES256 and
ES256K, 48 for *384, 64 for *512.`,
		Example: `  tresor key sign --hsm-name ContosoMHSM --name ec1 --algorithm ES256 --digest $(printf hello | openssl dgst -sha256 -binary | base64)`,
	}, &ref, true,
		func(cmd *cobra.Command) (err error) {
			alg, digest, err = k.parse(cmd)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			r, err := c.Sign(ctx, hsmURL, ref.name, ref.version, alg, digest)
			if err != nil {
				return nil, err
			}
			return keySignOut{Algorithm: alg, KeyID: keyResultID(r.Kid, &ref, hsmURL), Signature: base64.StdEncoding.EncodeToString(r.Value)}, nil
		})
	k.addFlags(cmd, "the digest to sign")
	return cmd
}

func (a *app) keyVerifyCommand() *cobra.Command {
	var (
		ref         keyRef
		k           keySignFlags
		signature   string
		alg         string
		digest, sig []byte
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "verify",
		Short: "Verify a signature over a digest with a key",
		Long: `Verify --signature (base64, as sign printed it) over --digest (base64) with a
key. Prints isValid true or false; a signature that does not verify is not an
error.`,
		Example: `  tresor key verify --hsm-name ContosoMHSM --name ec1 --algorithm ES256 --digest <base64> --signature <base64>`,
	}, &ref, true,
		func(cmd *cobra.Command) (err error) {
			if alg, digest, err = k.parse(cmd); err != nil {
				return err
			}
			if signature == "" {
				return usagef(cmd, "--signature is required: the signature to verify, base64")
			}
			if sig, err = keyDecodeB64(signature); err != nil {
				return usagef(cmd, "--signature is not base64")
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			valid, err := c.Verify(ctx, hsmURL, ref.name, ref.version, alg, digest, sig)
			if err != nil {
				return nil, err
			}
			return keyVerifyOut{Algorithm: alg, IsValid: valid, KeyID: ref.kid(hsmURL)}, nil
		})
	k.addFlags(cmd, "the digest that was signed")
	cmd.Flags().StringVar(&signature, "signature", "", "the signature to verify, base64 (required)")
	return cmd
}

func (a *app) keyRandomCommand() *cobra.Command {
	var (
		h     hsmTarget
		count int
	)
	cmd := a.keyOnHSM(&cobra.Command{
		Use:     "random",
		Short:   "Get random bytes from the HSM",
		Long:    `Get --count random bytes (1 to 128) from the HSM's generator, printed in base64.`,
		Example: `  tresor key random --hsm-name ContosoMHSM --count 32 --query value -o tsv`,
	}, &h,
		func(cmd *cobra.Command) error {
			if !cmd.Flags().Changed("count") {
				return usagef(cmd, "--count is required: how many random bytes, %d to %d", client.MinRandomBytes, client.MaxRandomBytes)
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			b, err := c.GetRandomBytes(ctx, hsmURL, count)
			if err != nil {
				return nil, err
			}
			return map[string]string{"value": base64.StdEncoding.EncodeToString(b)}, nil
		})
	cmd.Flags().IntVar(&count, "count", 0, "the number of random bytes, 1 to 128 (required)")
	return cmd
}

func (a *app) keyRotationPolicyUpdateCommand() *cobra.Command {
	var (
		ref   keyRef
		value string
		p     wire.KeyRotationPolicy
	)
	cmd := a.keyOn(&cobra.Command{
		Use:   "update",
		Short: "Set a key's rotation policy",
		Long: `Set a key's rotation policy from --value: the policy as JSON, @file, or the path
of a JSON file, as az takes it. Property names may be camelCase (as the REST
API and az's examples write them) or snake_case:

  {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}},
                       {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}],
   "attributes": {"expiryTime": "P1Y"}}

Durations are ISO 8601; expiryTime must be at least 28 days.`,
		Example: `  tresor key rotation-policy update --hsm-name ContosoMHSM --name rsa1 --value @policy.json`,
	}, &ref, false,
		func(cmd *cobra.Command) (err error) {
			if value == "" {
				return usagef(cmd, "--value is required: the rotation policy as JSON, @file or a file path")
			}
			p, err = parseRotationPolicy(value)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return rotationPolicyOutput(c.UpdateKeyRotationPolicy(ctx, hsmURL, ref.name, p))
		})
	cmd.Flags().StringVar(&value, "value", "", "the rotation policy: JSON, @file or the path of a JSON file (required)")
	return cmd
}

// parseRotationPolicy reads --value of rotation-policy update as az does:
// a file (@path, or a path that exists) or JSON text, whose property names
// az turns into snake_case; lifetime actions with a trigger object or the
// trigger's fields inline, the action as {"type": …} or a string, and the
// expiry at the top or in "attributes" (which wins).
func parseRotationPolicy(value string) (wire.KeyRotationPolicy, error) {
	var p wire.KeyRotationPolicy
	text := []byte(value)
	if path, ok := strings.CutPrefix(value, "@"); ok {
		data, err := readInputFile(path)
		if err != nil {
			return p, err
		}
		text = data
	} else if fi, err := os.Stat(value); err == nil && !fi.IsDir() {
		data, err := os.ReadFile(value)
		if err != nil {
			return p, err
		}
		text = data
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(text))
	if err := dec.Decode(&raw); err != nil {
		//lint:ignore ST1005 az's message, word for word
		return p, fmt.Errorf("Failed to parse string as JSON: %v", err)
	}
	doc, _ := snakeKeys(raw).(map[string]any)
	if len(doc) == 0 {
		//lint:ignore ST1005 az's message, word for word
		return p, errors.New("Please specify a valid policy")
	}
	str := func(v any, what string) (string, error) {
		switch s := v.(type) {
		case nil:
			return "", nil
		case string:
			return s, nil
		}
		return "", fmt.Errorf("invalid rotation policy: %s must be a string", what)
	}
	p.LifetimeActions = []wire.LifetimeAction{}
	if la, ok := doc["lifetime_actions"]; ok && la != nil {
		list, ok := la.([]any)
		if !ok {
			return p, errors.New("invalid rotation policy: lifetimeActions must be a list")
		}
		for i, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				return p, fmt.Errorf("invalid rotation policy: lifetimeActions[%d] must be an object", i)
			}
			var typ any = m["action"]
			if am, ok := typ.(map[string]any); ok {
				typ = am["type"]
			}
			t, err := str(typ, fmt.Sprintf("lifetimeActions[%d].action.type", i))
			if err != nil {
				return p, err
			}
			switch {
			case strings.EqualFold(t, "rotate"):
				t = "Rotate"
			case strings.EqualFold(t, "notify"):
				t = "Notify"
			default:
				return p, fmt.Errorf("invalid rotation policy: lifetimeActions[%d].action.type %q: choose Rotate or Notify", i, t)
			}
			trig := m
			if tm, ok := m["trigger"].(map[string]any); ok {
				trig = tm
			}
			var la wire.LifetimeAction
			la.Action.Type = t
			if la.Trigger.TimeAfterCreate, err = str(trig["time_after_create"], fmt.Sprintf("lifetimeActions[%d].trigger.timeAfterCreate", i)); err != nil {
				return p, err
			}
			if la.Trigger.TimeBeforeExpiry, err = str(trig["time_before_expiry"], fmt.Sprintf("lifetimeActions[%d].trigger.timeBeforeExpiry", i)); err != nil {
				return p, err
			}
			p.LifetimeActions = append(p.LifetimeActions, la)
		}
	}
	expiry := func(m map[string]any) (string, error) {
		v := m["expires_in"]
		if v == nil {
			v = m["expiry_time"]
		}
		return str(v, "expiryTime")
	}
	exp, err := expiry(doc)
	if err != nil {
		return p, err
	}
	if am, ok := doc["attributes"].(map[string]any); ok && len(am) > 0 {
		if exp, err = expiry(am); err != nil {
			return p, err
		}
	}
	p.Attributes = &wire.KeyRotationPolicyAttribs{ExpiryTime: exp}
	return p, nil
}

// snakeKeys turns the object keys of a JSON value into snake_case, as az's
// get_json_object does (timeAfterCreate → time_after_create).
func snakeKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[toSnake(k)] = snakeKeys(val)
		}
		return out
	case []any:
		for i := range x {
			x[i] = snakeKeys(x[i])
		}
		return x
	}
	return v
}

func toSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Output shapes.

// keyISODate formats unix seconds as Python's isoformat() of an aware UTC
// datetime, which az prints.
func keyISODate(p *int64) *string {
	if p == nil {
		return nil
	}
	s := time.Unix(*p, 0).UTC().Format("2006-01-02T15:04:05+00:00")
	return &s
}

// keyStdB64 re-encodes a base64url member in standard base64 with padding,
// as az prints the SDK's bytes; nil if empty.
func keyStdB64(s string) *string {
	if s == "" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return &s // not base64url: print what the service sent
	}
	out := base64.StdEncoding.EncodeToString(b)
	return &out
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// keyAttributesOut are a key's attributes as az prints them.
type keyAttributesOut struct {
	Created         *string `json:"created"`
	Enabled         *bool   `json:"enabled"`
	Expires         *string `json:"expires"`
	Exportable      *bool   `json:"exportable"`
	HSMPlatform     *string `json:"hsmPlatform"`
	NotBefore       *string `json:"notBefore"`
	RecoverableDays *int    `json:"recoverableDays"`
	RecoveryLevel   *string `json:"recoveryLevel"`
	Updated         *string `json:"updated"`
}

func keyAttributesOutput(at wire.KeyAttributes) keyAttributesOut {
	return keyAttributesOut{
		Created: keyISODate(at.Created), Enabled: at.Enabled, Expires: keyISODate(at.Expires), Exportable: at.Exportable,
		HSMPlatform: strOrNil(at.HSMPlatform), NotBefore: keyISODate(at.NotBefore), RecoverableDays: at.RecoverableDays,
		RecoveryLevel: strOrNil(at.RecoveryLevel), Updated: keyISODate(at.Updated),
	}
}

// keyJWKOut is the SDK's JsonWebKey as az prints it: every member, binary
// ones in standard base64 ("t" is key_hsm).
type keyJWKOut struct {
	Crv    *string  `json:"crv"`
	D      *string  `json:"d"`
	DP     *string  `json:"dp"`
	DQ     *string  `json:"dq"`
	E      *string  `json:"e"`
	K      *string  `json:"k"`
	KeyOps []string `json:"keyOps"`
	Kid    *string  `json:"kid"`
	Kty    *string  `json:"kty"`
	N      *string  `json:"n"`
	P      *string  `json:"p"`
	Q      *string  `json:"q"`
	QI     *string  `json:"qi"`
	T      *string  `json:"t"`
	X      *string  `json:"x"`
	Y      *string  `json:"y"`
}

// keyReleasePolicyOut is the SDK's KeyReleasePolicy as az prints it.
type keyReleasePolicyOut struct {
	ContentType   *string `json:"contentType"`
	EncodedPolicy *string `json:"encodedPolicy"`
	Immutable     *bool   `json:"immutable"`
}

// keyBundleOut is a key as az's transform_key_output prints it.
type keyBundleOut struct {
	Attributes    keyAttributesOut     `json:"attributes"`
	Key           keyJWKOut            `json:"key"`
	Managed       *bool                `json:"managed"`
	ReleasePolicy *keyReleasePolicyOut `json:"releasePolicy"`
	Tags          map[string]string    `json:"tags"`
}

// deletedKeyBundleOut adds what a deleted key has.
type deletedKeyBundleOut struct {
	keyBundleOut
	DeletedDate        *string `json:"deletedDate"`
	RecoveryID         *string `json:"recoveryId"`
	ScheduledPurgeDate *string `json:"scheduledPurgeDate"`
}

// keyBundleOutput is what a command prints for the key a call returned
// with err.
func keyBundleOutput(kb *wire.KeyBundle, err error) (any, error) {
	if kb == nil || err != nil {
		return nil, err
	}
	return keyBundleValue(*kb), nil
}

func keyBundleValue(kb wire.KeyBundle) keyBundleOut {
	k := kb.Key
	out := keyBundleOut{
		Attributes: keyAttributesOutput(kb.Attributes),
		Key: keyJWKOut{
			Crv: strOrNil(k.Crv), D: keyStdB64(k.D), DP: keyStdB64(k.DP), DQ: keyStdB64(k.DQ), E: keyStdB64(k.E),
			K: keyStdB64(k.K), KeyOps: k.KeyOps, Kid: strOrNil(k.Kid), Kty: strOrNil(k.Kty), N: keyStdB64(k.N),
			P: keyStdB64(k.P), Q: keyStdB64(k.Q), QI: keyStdB64(k.QI), T: keyStdB64(k.KeyHSM), X: keyStdB64(k.X), Y: keyStdB64(k.Y),
		},
		Managed: kb.Managed,
		Tags:    kb.Tags,
	}
	out.ReleasePolicy = keyReleasePolicyOutput(kb.ReleasePolicy)
	return out
}

func keyReleasePolicyOutput(rp *wire.KeyReleasePolicy) *keyReleasePolicyOut {
	if rp == nil {
		return nil
	}
	out := &keyReleasePolicyOut{ContentType: strOrNil(rp.ContentType), Immutable: rp.Immutable}
	if rp.Data != "" {
		// The SDK decodes the policy to bytes; az prints them as text.
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(rp.Data, "=")); err == nil && utf8.Valid(b) {
			s := string(b)
			out.EncodedPolicy = &s
		} else {
			out.EncodedPolicy = &rp.Data
		}
	}
	return out
}

// deletedKeyBundleOutput is what a command prints for the deleted key a
// call returned with err.
func deletedKeyBundleOutput(d *wire.DeletedKeyBundle, err error) (any, error) {
	if d == nil || err != nil {
		return nil, err
	}
	return deletedKeyBundleOut{
		keyBundleOut: keyBundleValue(d.KeyBundle),
		DeletedDate:  keyISODate(d.DeletedDate), RecoveryID: strOrNil(d.RecoveryID), ScheduledPurgeDate: keyISODate(d.ScheduledPurgeDate),
	}, nil
}

// keyItemOut is a key in a list as az's transform_key_list_output prints it.
type keyItemOut struct {
	Attributes    keyAttributesOut     `json:"attributes"`
	Kid           string               `json:"kid"`
	Managed       *bool                `json:"managed"`
	Name          *string              `json:"name"`
	ReleasePolicy *keyReleasePolicyOut `json:"releasePolicy"`
	Tags          map[string]string    `json:"tags"`
}

// deletedKeyItemOut adds what a deleted key has.
type deletedKeyItemOut struct {
	keyItemOut
	DeletedDate        *string `json:"deletedDate"`
	RecoveryID         *string `json:"recoveryId"`
	ScheduledPurgeDate *string `json:"scheduledPurgeDate"`
}

// keyNameOf returns the key name in a key id (its fifth "/" part, as the SDK
// takes it).
func keyNameOf(kid string) *string {
	parts := strings.Split(kid, "/")
	if len(parts) > 4 && parts[4] != "" {
		return &parts[4]
	}
	return nil
}

func keyItemOutput(it wire.KeyItem) keyItemOut {
	return keyItemOut{Attributes: keyAttributesOutput(it.Attributes), Kid: it.Kid, Managed: it.Managed, Name: keyNameOf(it.Kid), Tags: it.Tags}
}

func deletedKeyItemOutput(it wire.DeletedKeyItem) deletedKeyItemOut {
	return deletedKeyItemOut{
		keyItemOut:  keyItemOutput(it.KeyItem),
		DeletedDate: keyISODate(it.DeletedDate), RecoveryID: strOrNil(it.RecoveryID), ScheduledPurgeDate: keyISODate(it.ScheduledPurgeDate),
	}
}

// keyRotationPolicyOut is the SDK's KeyRotationPolicy as az prints it.
type keyRotationPolicyOut struct {
	CreatedOn       *string                `json:"createdOn"`
	ExpiresIn       *string                `json:"expiresIn"`
	ID              *string                `json:"id"`
	LifetimeActions []keyLifetimeActionOut `json:"lifetimeActions"`
	UpdatedOn       *string                `json:"updatedOn"`
}

// keyLifetimeActionOut is the SDK's KeyRotationLifetimeAction.
type keyLifetimeActionOut struct {
	Action           string  `json:"action"`
	TimeAfterCreate  *string `json:"timeAfterCreate"`
	TimeBeforeExpiry *string `json:"timeBeforeExpiry"`
}

// rotationPolicyOutput is what a command prints for the rotation policy a
// call returned with err.
func rotationPolicyOutput(p *wire.KeyRotationPolicy, err error) (any, error) {
	if p == nil || err != nil {
		return nil, err
	}
	out := keyRotationPolicyOut{ID: strOrNil(p.ID), LifetimeActions: []keyLifetimeActionOut{}}
	for _, la := range p.LifetimeActions {
		out.LifetimeActions = append(out.LifetimeActions, keyLifetimeActionOut{
			Action: la.Action.Type, TimeAfterCreate: strOrNil(la.Trigger.TimeAfterCreate), TimeBeforeExpiry: strOrNil(la.Trigger.TimeBeforeExpiry),
		})
	}
	if at := p.Attributes; at != nil {
		out.CreatedOn, out.UpdatedOn, out.ExpiresIn = keyISODate(at.Created), keyISODate(at.Updated), strOrNil(at.ExpiryTime)
	}
	return out, nil
}
