package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/securitydomain"
	"tresor/internal/wire"
)

// sdWaitTimeout bounds how long download, upload and wait poll before they
// give up (az polls 30 times, 5 s apart).
const sdWaitTimeout = 5 * time.Minute

// File modes of what the security-domain commands write: the file and the
// restore blob stay with their owner; the exchange certificate is public.
const (
	secretFileMode = 0o600
	publicFileMode = 0o644
)

// securityDomainCommand returns the twin of `az keyvault security-domain`.
func (a *app) securityDomainCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "security-domain",
		Short: "Download, back up and restore a managed HSM's security domain",
		Long: `Download, back up and restore a managed HSM's security domain, like
'az keyvault security-domain'.

A new HSM is NotActivated until its security domain is downloaded, encrypted
to 3 to 10 custodian certificates with a quorum: 'download' activates it. To
recover the security domain into another new HSM: 'init-recovery' fetches that
HSM's exchange certificate, 'restore-blob' (offline, with a quorum of the
custodians' private keys) re-encrypts the security domain to it, and 'upload'
sends the result. See docs/security-domain.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		a.sdDownloadCommand(),
		a.sdInitRecoveryCommand(),
		a.sdRestoreBlobCommand(),
		a.sdUploadCommand(),
		a.sdWaitCommand(),
	)
	return cmd
}

// sdCommand completes cmd, a security-domain command on the HSM that
// target names, as [app.onHSM]; -n is --hsm-name here, as in az.
func (a *app) sdCommand(cmd *cobra.Command, target *hsmTarget, check func(cmd *cobra.Command) error, call hsmCallFunc) *cobra.Command {
	target.short = "n"
	return a.onHSM(cmd, target, nil, check, call)
}

func (a *app) sdDownloadCommand() *cobra.Command {
	var (
		target  hsmTarget
		certs   []string
		quorum  int
		outFile string
		noWait  bool
		jwks    []wire.SecurityDomainJWK
	)
	cmd := a.sdCommand(&cobra.Command{
		Use:   "download",
		Short: "Download the security domain, encrypted to custodian certificates; this activates a new HSM",
		Long: `Download the HSM's security domain, encrypted to 3 to 10 custodian
certificates (PEM, RSA of at least 2048 bits) so that any --sd-quorum of
their private keys can decrypt it. A NotActivated HSM becomes Active. The
file is written once the operation has succeeded (at once with --no-wait);
an existing file is never overwritten. Prints the operation's final status.`,
		Example: `  for i in 0 1 2; do
    openssl req -newkey rsa:2048 -nodes -keyout cert_$i.key -x509 -days 365 -out cert_$i.cer -subj /CN=custodian$i
  done
  tresor security-domain download --hsm-name ContosoMHSM \
    --sd-wrapping-keys cert_0.cer cert_1.cer cert_2.cer --sd-quorum 2 --security-domain-file ContosoMHSM-SD.json`,
	}, &target,
		func(cmd *cobra.Command) (err error) {
			switch {
			case outFile == "":
				return usagef(cmd, "--security-domain-file is required: the file to write the security domain to")
			case len(certs) == 0:
				return usagef(cmd, "--sd-wrapping-keys is required: 3 to 10 custodian certificates (PEM)")
			case !cmd.Flags().Changed("sd-quorum"):
				return usagef(cmd, "--sd-quorum is required: how many custodians must join to decrypt the security domain")
			}
			if err := checkNewFile(outFile); err != nil {
				return err
			}
			n := len(certs)
			if n < securitydomain.MinCertificates || n > securitydomain.MaxCertificates {
				return usagef(cmd, "The number of wrapping keys (N) should be in range [%d, %d]; %d given.", securitydomain.MinCertificates, securitydomain.MaxCertificates, n)
			}
			if quorum < securitydomain.MinRequired || quorum > securitydomain.MaxRequired {
				return usagef(cmd, "The quorum of security domain (M) should be in range [%d, %d]; %d given.", securitydomain.MinRequired, securitydomain.MaxRequired, quorum)
			}
			if quorum > n {
				return usagef(cmd, "--sd-quorum %d is more than the %d wrapping keys: the security domain could never be decrypted", quorum, n)
			}
			jwks, err = custodianJWKs(certs)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			file, op, err := c.BeginDownloadSecurityDomain(ctx, hsmURL, jwks, quorum)
			if err != nil {
				return nil, err
			}
			if noWait {
				return nil, writeNewFile(outFile, file, secretFileMode)
			}
			st, err := a.sdWait(ctx, op, &target)
			if err != nil {
				return nil, err // Failed: the file is not written, as in az
			}
			if err := writeNewFile(outFile, file, secretFileMode); err != nil {
				return nil, err
			}
			return sdStatusOutput(st, nil)
		})
	f := cmd.Flags()
	f.StringArrayVar(&certs, "sd-wrapping-keys", nil, "custodian certificates (PEM), 3 to 10, space-separated (required)")
	f.IntVar(&quorum, "sd-quorum", 0, "how many custodians' private keys decrypt the security domain, 2 to the number of certificates (required)")
	f.StringVar(&outFile, "security-domain-file", "", "the file to write the security domain to; must not exist (required)")
	noWaitFlag(cmd, &noWait)
	markNargs(f, "sd-wrapping-keys")
	return cmd
}

// custodianJWKs reads custodian certificates (PEM, or DER) and makes the
// JWKs of a download request, refusing the same certificate twice and two
// certificates for one key (the same modulus).
func custodianJWKs(paths []string) ([]wire.SecurityDomainJWK, error) {
	var jwks []wire.SecurityDomainJWK
	seen, seenKey := map[string]string{}, map[string]string{}
	for _, p := range paths {
		data, err := readInputFile(p)
		if err != nil {
			return nil, err
		}
		der := data
		if block := firstPEM(data, "CERTIFICATE"); block != nil {
			der = block.Bytes
		} else if bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, fmt.Errorf("%s: no CERTIFICATE in the PEM file (give the custodian's certificate, not its private key)", p)
		}
		jwk, err := client.CustodianJWK(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		if prev, dup := seen[jwk.X5TS256]; dup {
			return nil, fmt.Errorf("%s and %s are the same certificate: each custodian needs their own", prev, p)
		}
		// One key in two certificates would give its holder two shares,
		// so fewer custodians than the quorum could decrypt the domain.
		// n is the modulus as a minimal big-endian number: one encoding
		// per key, whatever the certificates look like.
		if prev, dup := seenKey[jwk.N]; dup {
			return nil, fmt.Errorf("%s and %s are certificates for the same key: each custodian needs their own key pair", prev, p)
		}
		seen[jwk.X5TS256], seenKey[jwk.N] = p, p
		jwks = append(jwks, jwk)
	}
	return jwks, nil
}

// firstPEM returns the first PEM block of data of type typ, or nil.
func firstPEM(data []byte, typ string) *pem.Block {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil
		}
		if block.Type == typ {
			return block
		}
	}
}

func (a *app) sdInitRecoveryCommand() *cobra.Command {
	var target hsmTarget
	var exchangeFile string
	cmd := a.sdCommand(&cobra.Command{
		Use:   "init-recovery",
		Short: "Put a new HSM into recovery mode and write its exchange certificate",
		Long: `Put a NotActivated HSM into recovery mode and write its exchange (transfer)
certificate to --sd-exchange-key, in PEM as az writes it. 'restore-blob'
re-encrypts a security domain to this certificate; 'upload' sends the result
to the HSM. Asking again returns the same certificate until an upload
succeeds. An existing file is never overwritten.`,
		Example: `  tresor security-domain init-recovery --hsm-name ContosoMHSM2 --sd-exchange-key ContosoMHSM2-SDE.cer`,
	}, &target,
		func(cmd *cobra.Command) error {
			if exchangeFile == "" {
				return usagef(cmd, "--sd-exchange-key is required: the file to write the exchange certificate to")
			}
			return checkNewFile(exchangeFile)
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			der, err := c.SecurityDomainTransferKey(ctx, hsmURL)
			if err != nil {
				return nil, err
			}
			if _, err := securitydomain.ParseCertificate(der); err != nil {
				return nil, fmt.Errorf("the HSM's exchange certificate is not usable: %s", trimSD(err))
			}
			return nil, writeNewFile(exchangeFile, securitydomain.CertificatePEM(der), publicFileMode)
		})
	cmd.Flags().StringVar(&exchangeFile, "sd-exchange-key", "", "the file to write the exchange certificate to (PEM); must not exist (required)")
	return cmd
}

// restoreInput is what rebuilding a restore blob takes (spec §2.8, §2.9).
type restoreInput struct {
	sdFile       string   // the security-domain file
	exchangeCert string   // the new HSM's exchange certificate (PEM)
	exchangePEM  []byte   // the certificate itself, if not read from exchangeCert
	wrappingKeys []string // custodian private keys; each certificate is next to its key, as .cer
	passwords    []string // by index of wrappingKeys; "" for none
}

// addFlags adds --sd-exchange-key, --sd-wrapping-keys and --passwords.
func (in *restoreInput) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&in.exchangeCert, "sd-exchange-key", "", "the new HSM's exchange certificate (PEM), as init-recovery wrote it")
	f.StringArrayVar(&in.wrappingKeys, "sd-wrapping-keys", nil,
		"custodians' private keys (PEM), at least the quorum, space-separated; each one's certificate must be next to it with the extension .cer")
	f.StringArrayVar(&in.passwords, "passwords", nil, "passwords of encrypted private keys, space-separated, in the order of --sd-wrapping-keys (\"\" for a key without one)")
	markNargs(f, "sd-wrapping-keys", "passwords")
}

// checkFlags checks that the flags a blob needs were given.
func (in *restoreInput) checkFlags(cmd *cobra.Command) error {
	switch {
	case in.exchangeCert == "":
		return usagef(cmd, "Please specify --sd-exchange-key: the new HSM's exchange certificate, from init-recovery")
	case len(in.wrappingKeys) == 0:
		return usagef(cmd, "Please specify --sd-wrapping-keys: the custodians' private keys, at least the quorum")
	case len(in.passwords) > len(in.wrappingKeys):
		return usagef(cmd, "--passwords: %d passwords for %d wrapping keys", len(in.passwords), len(in.wrappingKeys))
	}
	return nil
}

// buildRestoreBlob does what az keyvault security-domain restore-blob does,
// offline: it decrypts a quorum of shares of the security-domain file with
// the custodians' private keys, rebuilds the master key, decrypts the
// blobs and re-encrypts them to the exchange certificate. The errors are
// az's where az has one.
func buildRestoreBlob(in restoreInput) ([]byte, error) {
	data, err := readInputFile(in.sdFile)
	if err != nil {
		return nil, err
	}
	exPEM := in.exchangePEM
	if exPEM == nil {
		if exPEM, err = readInputFile(in.exchangeCert); err != nil {
			return nil, err
		}
	}
	file, err := parseSDFile(in.sdFile, data)
	if err != nil {
		return nil, err
	}
	if len(in.wrappingKeys) < file.Required {
		return nil, azErrorf("Insufficient shares available: the security domain needs %d of its custodians' private keys; --sd-wrapping-keys gives %d", file.Required, len(in.wrappingKeys))
	}
	exchange, err := securitydomain.ParseCertificatePEM(exPEM)
	if err != nil {
		return nil, fmt.Errorf("--sd-exchange-key %s: %s", in.exchangeCert, trimSD(err))
	}
	custodians := make([]securitydomain.Custodian, 0, len(in.wrappingKeys))
	for i, keyPath := range in.wrappingKeys {
		password := ""
		if i < len(in.passwords) {
			password = in.passwords[i]
		}
		c, err := loadCustodian(keyPath, password)
		if err != nil {
			return nil, err
		}
		custodians = append(custodians, c)
	}
	blobs, err := file.Open(custodians)
	if err != nil {
		var te *securitydomain.TamperedError
		switch {
		case errors.Is(err, securitydomain.ErrInsufficientShares):
			return nil, azErrorf("Insufficient shares available: the private keys given decrypt fewer than the %d shares the security domain needs; are they the right custodians' keys for %s?", file.Required, in.sdFile)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s is damaged or was altered: %s does not authenticate", in.sdFile, te.Field)
		default:
			return nil, azErrorf("Invalid SD file %s: %s", in.sdFile, trimSD(err))
		}
	}
	defer func() {
		for _, b := range blobs {
			clear(b.Data)
		}
	}()
	blob, err := securitydomain.BuildUploadBlob(blobs, exchange, nil)
	if err != nil {
		return nil, fmt.Errorf("building the restore blob: %s", trimSD(err))
	}
	return blob, nil
}

// parseSDFile checks a security-domain file as az does, with az's
// messages, then validates it fully.
func parseSDFile(path string, data []byte) (*securitydomain.File, error) {
	var doc struct {
		EncData    json.RawMessage `json:"EncData"`
		SharedKeys *struct {
			Required     json.RawMessage `json:"required"`
			KeyAlgorithm *string         `json:"key_algorithm"`
		} `json:"SharedKeys"`
		WrappedKey json.RawMessage `json:"WrappedKey"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, azErrorf("Invalid SD file %s: not a JSON security-domain file", path)
	}
	if doc.SharedKeys == nil && doc.WrappedKey != nil {
		return nil, azErrorf("Invalid SD file %s: it is a restore blob, not a security-domain file (upload it with --restore-blob)", path)
	}
	if doc.EncData == nil || doc.SharedKeys == nil {
		return nil, azErrorf("Invalid SD file %s: no EncData or SharedKeys", path)
	}
	var required int
	if json.Unmarshal(doc.SharedKeys.Required, &required) != nil ||
		required < securitydomain.MinRequired || required > securitydomain.MaxRequired {
		return nil, azErrorf("Invalid SD file %s: the value of \"required\" should be in range [%d, %d]", path, securitydomain.MinRequired, securitydomain.MaxRequired)
	}
	if alg := doc.SharedKeys.KeyAlgorithm; alg == nil || *alg != "shamir_share" {
		got := "none"
		if alg != nil {
			got = *alg
		}
		return nil, azErrorf("Unsupported SharedKeys algorithm: %s. Supported: shamir_share", got)
	}
	file, err := securitydomain.ParseFile(data)
	if err != nil {
		return nil, azErrorf("Invalid SD file %s: %s", path, trimSD(err))
	}
	return file, nil
}

// loadCustodian reads a custodian's private key and the certificate next
// to it (the key's path with its extension replaced by .cer, as az finds it).
func loadCustodian(keyPath, password string) (securitydomain.Custodian, error) {
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		return securitydomain.Custodian{}, azErrorf("SD wrapping key %s does not exist.", keyPath)
	}
	keyPEM, err := readInputFile(keyPath)
	if err != nil {
		return securitydomain.Custodian{}, err
	}
	certPath := strings.TrimSuffix(keyPath, filepath.Ext(keyPath)) + ".cer"
	if _, err := os.Stat(certPath); errors.Is(err, fs.ErrNotExist) {
		return securitydomain.Custodian{}, azErrorf("Certificate %s does not exist. You should put it into the same folder with your wrapping keys", certPath)
	}
	certPEM, err := readInputFile(certPath)
	if err != nil {
		return securitydomain.Custodian{}, err
	}
	key, err := securitydomain.ParsePrivateKeyPEM(keyPEM, []byte(password))
	switch {
	case errors.Is(err, securitydomain.ErrPasswordRequired):
		return securitydomain.Custodian{}, withHint(fmt.Errorf("%s: the private key is encrypted and no password was given", keyPath),
			"give the passwords with --passwords, in the order of --sd-wrapping-keys (\"\" for a key without one)")
	case errors.Is(err, securitydomain.ErrIncorrectPassword):
		return securitydomain.Custodian{}, fmt.Errorf("%s: incorrect password for the private key", keyPath)
	case err != nil:
		return securitydomain.Custodian{}, fmt.Errorf("%s: %s", keyPath, trimSD(err))
	}
	cert, err := securitydomain.ParseCertificatePEM(certPEM)
	if err != nil {
		return securitydomain.Custodian{}, fmt.Errorf("%s: %s", certPath, trimSD(err))
	}
	if !cert.Public.Equal(&key.PublicKey) {
		return securitydomain.Custodian{}, fmt.Errorf("the private key %s does not belong to the certificate %s", keyPath, certPath)
	}
	return securitydomain.Custodian{Cert: cert, Key: key}, nil
}

// trimSD drops the package prefix of a securitydomain error.
func trimSD(err error) string {
	return strings.TrimPrefix(err.Error(), "securitydomain: ")
}

func (a *app) sdRestoreBlobCommand() *cobra.Command {
	var in restoreInput
	var outFile string
	cmd := &cobra.Command{
		Use:   "restore-blob",
		Short: "Re-encrypt a security domain to a new HSM's exchange certificate, offline",
		Long: `Make the restore blob that 'upload --restore-blob' sends to a new HSM, on a
machine that need not reach any server: decrypt a quorum of the security
domain's shares with the custodians' private keys (each key's certificate must
lie next to it, with the extension .cer), rebuild the security domain and
encrypt it to the exchange certificate that init-recovery wrote. Encrypted
private keys take --passwords. An existing output file is never overwritten.`,
		Example: `  tresor security-domain restore-blob --sd-file ContosoMHSM-SD.json --sd-exchange-key ContosoMHSM2-SDE.cer \
    --sd-wrapping-keys cert_0.key cert_1.key --sd-file-restore-blob restore_blob.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case in.sdFile == "":
				return usagef(cmd, "--sd-file is required: the security-domain file that download wrote")
			case outFile == "":
				return usagef(cmd, "--sd-file-restore-blob is required: the file to write the restore blob to")
			}
			if err := in.checkFlags(cmd); err != nil {
				return err
			}
			if err := checkNewFile(outFile); err != nil {
				return err
			}
			blob, err := buildRestoreBlob(in)
			if err != nil {
				return err
			}
			return writeNewFile(outFile, blob, secretFileMode)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.sdFile, "sd-file", "", "the security-domain file (required)")
	in.addFlags(cmd)
	f.StringVar(&outFile, "sd-file-restore-blob", "", "the file to write the restore blob to; must not exist (required)")
	return cmd
}

func (a *app) sdUploadCommand() *cobra.Command {
	var (
		target      hsmTarget
		in          restoreInput
		restoreBlob bool
		noWait      bool
		blob        []byte
	)
	cmd := a.sdCommand(&cobra.Command{
		Use:   "upload",
		Short: "Restore a security domain into a new HSM in recovery mode; this activates it",
		Long: `Send a security domain to an HSM that init-recovery put into recovery mode.
With --restore-blob, --sd-file is a restore blob that 'restore-blob' made and
is sent as it is. Without, --sd-file is the security-domain file, and the
blob is made here first from --sd-exchange-key, --sd-wrapping-keys and
--passwords (the private keys then are on this machine: 'restore-blob' on an
offline machine keeps them off the network). Prints the operation's final
status (with --no-wait, the server's first answer); a failed upload leaves
the HSM as it was and exits with code 2.`,
		Example: `  tresor security-domain upload --hsm-name ContosoMHSM2 --sd-file restore_blob.json --restore-blob`,
	}, &target,
		func(cmd *cobra.Command) (err error) {
			if in.sdFile == "" {
				return usagef(cmd, "--sd-file is required: the restore blob (with --restore-blob) or the security-domain file")
			}
			if restoreBlob {
				blob, err = readRestoreBlob(in.sdFile)
				return err
			}
			if err := in.checkFlags(cmd); err != nil {
				return err
			}
			blob, err = buildRestoreBlob(in)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			first, op, err := c.BeginUploadSecurityDomain(ctx, hsmURL, blob)
			if err != nil {
				return nil, err
			}
			if noWait {
				if strings.EqualFold(first.Status, client.SecurityDomainFailed) {
					// The server decided at once: say so, as waiting would.
					return nil, &client.Error{Status: http.StatusAccepted, Code: "SecurityDomainUploadFailed", Message: first.StatusDetails}
				}
				return sdStatusOutput(first, nil)
			}
			return sdStatusOutput(a.sdWait(ctx, op, &target))
		})
	f := cmd.Flags()
	f.StringVar(&in.sdFile, "sd-file", "", "the restore blob (with --restore-blob) or the security-domain file (required)")
	f.BoolVar(&restoreBlob, "restore-blob", false, "--sd-file is a restore blob from 'restore-blob': send it as it is")
	in.addFlags(cmd)
	noWaitFlag(cmd, &noWait)
	return cmd
}

// readRestoreBlob reads a restore blob and catches the likely mix-up of
// giving the security-domain file instead.
func readRestoreBlob(path string) ([]byte, error) {
	data, err := readInputFile(path)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("the restore blob %s is empty", path)
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(data, &doc) == nil {
		if _, ok := doc["SharedKeys"]; ok {
			return nil, withHint(fmt.Errorf("%s is a security-domain file, not a restore blob", path),
				"make a blob with 'tresor security-domain restore-blob', or drop --restore-blob and give --sd-exchange-key and --sd-wrapping-keys")
		}
	}
	return data, nil
}

func (a *app) sdWaitCommand() *cobra.Command {
	var target hsmTarget
	var operation string
	cmd := a.sdCommand(&cobra.Command{
		Use:   "wait",
		Short: "Wait until the HSM's last security-domain operation ends, and print its status",
	}, &target,
		func(cmd *cobra.Command) error {
			operation = strings.ToLower(operation)
			if !slices.Contains([]string{client.SecurityDomainUpload, client.SecurityDomainDownload}, operation) {
				return usagef(cmd, "--target-operation %q: choose upload or download", operation)
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			op, err := c.SecurityDomainOperationOf(hsmURL, operation)
			if err != nil {
				return nil, err
			}
			return sdStatusOutput(a.sdWait(ctx, op, &target))
		})
	cmd.Flags().StringVar(&operation, "target-operation", client.SecurityDomainUpload, "the operation to wait for: upload or download")
	return cmd
}

// sdWait waits for a security-domain operation, at most sdWaitTimeout,
// showing its status on stderr when stderr is a terminal.
func (a *app) sdWait(ctx context.Context, op *client.SecurityDomainOperation, target *hsmTarget) (*wire.SecurityDomainStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, sdWaitTimeout)
	defer cancel()
	what := "Security-domain " + op.Kind() + " of " + target.label()
	tty := isTerminal(a.env.Stderr)
	shown := false
	st, err := op.Wait(ctx, func(status string) {
		if tty && !op.Done() {
			fmt.Fprintf(a.env.Stderr, "\r\033[K%s: %s …", what, status)
			shown = true
		}
	})
	if shown {
		fmt.Fprint(a.env.Stderr, "\r\033[K")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, withHint(fmt.Errorf("gave up waiting for the security-domain %s after %v; it may still be running", op.Kind(), sdWaitTimeout),
			fmt.Sprintf("check it with 'tresor security-domain wait %s --target-operation %s'", target.flag(), op.Kind()))
	}
	return st, err
}

// sdStatus is a security-domain operation status as az prints it: the SDK
// model's attributes, camel-cased (status_details becomes statusDetails).
type sdStatus struct {
	Status        string  `json:"status"`
	StatusDetails *string `json:"statusDetails"`
}

// sdStatusOutput is what a command prints for the status a call returned
// with err.
func sdStatusOutput(st *wire.SecurityDomainStatus, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	out := sdStatus{Status: st.Status}
	if st.StatusDetails != "" {
		d := st.StatusDetails
		out.StatusDetails = &d
	}
	return out, nil
}

// azErrorf returns an error whose message is one of az's, capitalized and
// punctuated as az prints it, so that people and scripts who know az find the
// same words.
func azErrorf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// readInputFile reads a file the user named, with az's messages for a
// missing file or a directory.
func readInputFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, azErrorf("File %s does not exist.", path)
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, azErrorf("%s is a directory. A file is required.", path)
	}
	return os.ReadFile(path)
}

// errFileExists is az's refusal to overwrite an output file.
func errFileExists(path string) error {
	return azErrorf("File named '%s' already exists.", path)
}

// checkNewFile refuses an output path that exists (as a file, directory or
// link), before the command does any work.
func checkNewFile(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return errFileExists(path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return err
	}
}

// writeNewFile creates path with mode and writes data to it; it never
// overwrites an existing file, and removes what it created if writing fails.
func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return errFileExists(path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
