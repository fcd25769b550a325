package client

import (
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"tresor/internal/wire"
)

// Security-domain calls (spec §2.2). They go to an HSM's data plane: hsmURL
// is its base URL, as [Client.HSMURL] returns it or as the user gave it
// (https://{name}.{dnsSuffix}[:port], no path).

// SecurityDomainAPIVersion is the api-version of security-domain calls.
const SecurityDomainAPIVersion = "7.5"

// The security-domain operations, as their pending routes name them.
const (
	SecurityDomainDownload = "download"
	SecurityDomainUpload   = "upload"
)

// Statuses of a security-domain operation. Older Azure builds said
// "Succeeded" for success; [SecurityDomainOperation] accepts both.
const (
	SecurityDomainInProgress = "InProgress"
	SecurityDomainSuccess    = "Success"
	SecurityDomainFailed     = "Failed"
)

// minCustodianRSABits is the smallest custodian key the service takes.
const minCustodianRSABits = 2048

// CustodianJWK turns a custodian (wrapping) certificate, DER, into the JWK
// of a download request exactly as az keyvault security-domain download
// builds it: kty "RSA", alg "RSA-OAEP-256", key_ops verify, encrypt and
// wrapKey, n and e (base64url, minimal big-endian), x5c (the DER in
// standard base64 with padding), x5t and x5t#S256 (base64url SHA-1 and
// SHA-256 of the DER); no kid. The key must be RSA with at least 2048 bits.
// Validity dates are not checked. Error messages name no file: the caller
// knows which certificate it passed.
func CustodianJWK(certDER []byte) (wire.SecurityDomainJWK, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return wire.SecurityDomainJWK{}, fmt.Errorf("not an X.509 certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return wire.SecurityDomainJWK{}, fmt.Errorf("the certificate's key is %s, not RSA: only RSA >= %d bits is supported", cert.PublicKeyAlgorithm, minCustodianRSABits)
	}
	if n := pub.N.BitLen(); n < minCustodianRSABits {
		return wire.SecurityDomainJWK{}, fmt.Errorf("the certificate's RSA key has %d bits: only RSA >= %d bits is supported", n, minCustodianRSABits)
	}
	b64u := base64.RawURLEncoding.EncodeToString
	s1, s256 := sha1.Sum(certDER), sha256.Sum256(certDER)
	return wire.SecurityDomainJWK{
		Kty:     "RSA",
		KeyOps:  []string{"verify", "encrypt", "wrapKey"},
		N:       b64u(pub.N.Bytes()),
		E:       b64u(big.NewInt(int64(pub.E)).Bytes()),
		X5C:     []string{base64.StdEncoding.EncodeToString(certDER)},
		X5T:     b64u(s1[:]),
		X5TS256: b64u(s256[:]),
		Alg:     "RSA-OAEP-256",
	}, nil
}

// sdURL returns the URL of a security-domain route of the HSM at hsmURL.
func sdURL(hsmURL, path string) string {
	return strings.TrimRight(hsmURL, "/") + "/securitydomain/" + path + "?api-version=" + SecurityDomainAPIVersion
}

// BeginDownloadSecurityDomain asks the HSM at hsmURL for its security
// domain, encrypted to the custodian certificates with a quorum of
// required (POST /securitydomain/download). It returns the security-domain
// file, the JSON text of the answer's "value", exactly as received, and
// the operation to wait for: the download counts only once it reports
// success (az writes the file only then).
func (c *Client) BeginDownloadSecurityDomain(ctx context.Context, hsmURL string, certs []wire.SecurityDomainJWK, required int) ([]byte, *SecurityDomainOperation, error) {
	var out wire.SecurityDomainValue
	resp, err := c.DoJSON(ctx, http.MethodPost, sdURL(hsmURL, "download"), wire.CertificateInfo{Certificates: certs, Required: &required}, &out)
	if err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(out.Value) == "" {
		return nil, nil, errors.New("client: the server answered the download without a security domain")
	}
	return []byte(out.Value), c.newSDOperation(resp, hsmURL, SecurityDomainDownload, wire.SecurityDomainStatus{Status: SecurityDomainInProgress}), nil
}

// SecurityDomainTransferKey fetches the exchange (transfer) certificate of
// the HSM at hsmURL (GET /securitydomain/upload), which puts an HSM that is
// not activated into recovery mode. It returns the certificate's DER, the
// first x5c entry of the JWK that the answer carries as a JSON string (an
// object is accepted too, and so is the legacy key_format "pem").
func (c *Client) SecurityDomainTransferKey(ctx context.Context, hsmURL string) ([]byte, error) {
	var out struct {
		KeyFormat   string          `json:"key_format"`
		TransferKey json.RawMessage `json:"transfer_key"`
	}
	if _, err := c.DoJSON(ctx, http.MethodGet, sdURL(hsmURL, "upload"), nil, &out); err != nil {
		return nil, err
	}
	if len(out.TransferKey) == 0 {
		return nil, errors.New("client: the transfer key answer has no transfer_key")
	}
	raw := []byte(out.TransferKey)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.EqualFold(out.KeyFormat, "pem") {
			block, _ := pem.Decode([]byte(s))
			if block == nil || block.Type != "CERTIFICATE" {
				return nil, errors.New("client: the PEM transfer key holds no certificate")
			}
			return block.Bytes, nil
		}
		raw = []byte(s)
	}
	var jwk struct {
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(raw, &jwk); err != nil {
		return nil, fmt.Errorf("client: the transfer key is not a JWK: %w", err)
	}
	if len(jwk.X5C) == 0 || jwk.X5C[0] == "" {
		return nil, errors.New("client: the transfer key has no certificate (x5c)")
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(jwk.X5C[0]))
	if err != nil {
		return nil, errors.New("client: the transfer key's x5c[0] is not standard base64")
	}
	return der, nil
}

// BeginUploadSecurityDomain sends an upload (restore) blob, its JSON text,
// to the HSM at hsmURL (POST /securitydomain/upload). It returns the
// status the server answered with and the operation to wait for.
func (c *Client) BeginUploadSecurityDomain(ctx context.Context, hsmURL string, blob []byte) (*wire.SecurityDomainStatus, *SecurityDomainOperation, error) {
	var out wire.SecurityDomainStatus
	resp, err := c.DoJSON(ctx, http.MethodPost, sdURL(hsmURL, "upload"), wire.SecurityDomainValue{Value: string(blob)}, &out)
	if err != nil {
		return nil, nil, err
	}
	first := out
	if first.Status == "" {
		first.Status = SecurityDomainInProgress
	}
	return &out, c.newSDOperation(resp, hsmURL, SecurityDomainUpload, first), nil
}

// SecurityDomainOperationOf returns the operation that the pending route
// of operation (SecurityDomainDownload or SecurityDomainUpload) reports,
// for waiting on an operation started elsewhere (az keyvault
// security-domain wait). The HSM answers upload/pending for the last
// security-domain operation, whichever it was.
func (c *Client) SecurityDomainOperationOf(hsmURL, operation string) (*SecurityDomainOperation, error) {
	if operation != SecurityDomainDownload && operation != SecurityDomainUpload {
		return nil, fmt.Errorf("client: unknown security-domain operation %q", operation)
	}
	return &SecurityDomainOperation{
		c:         c,
		kind:      operation,
		statusURL: sdURL(hsmURL, operation+"/pending"),
		status:    wire.SecurityDomainStatus{Status: SecurityDomainInProgress},
	}, nil
}

// SecurityDomainOperation is a security-domain download or upload in
// progress. The client polls its status route (the Azure-AsyncOperation
// URL of the first answer, else {hsm}/securitydomain/{op}/pending) until
// the status is Success (or Succeeded) or Failed. It is not safe for
// concurrent use.
type SecurityDomainOperation struct {
	c         *Client
	kind      string
	statusURL string
	status    wire.SecurityDomainStatus
	wait      time.Duration // before the next poll; 0: the client's interval
	done      bool
	err       error
}

func (c *Client) newSDOperation(resp *http.Response, hsmURL, kind string, first wire.SecurityDomainStatus) *SecurityDomainOperation {
	op := &SecurityDomainOperation{c: c, kind: kind, statusURL: sdURL(hsmURL, kind+"/pending"), status: first}
	if u := resp.Header.Get("Azure-AsyncOperation"); u != "" {
		op.statusURL = u
	}
	return op
}

// Kind returns the operation: SecurityDomainDownload or SecurityDomainUpload.
func (op *SecurityDomainOperation) Kind() string { return op.kind }

// Done reports whether a poll has seen a terminal status.
func (op *SecurityDomainOperation) Done() bool { return op.done }

// Status returns the last status seen.
func (op *SecurityDomainOperation) Status() wire.SecurityDomainStatus { return op.status }

// Poll asks the status route once, unless the operation has ended. Once
// the status is Failed it returns an [*Error] whose Code is
// "SecurityDomain{Download,Upload}Failed" and whose Message is the
// server's status_details.
func (op *SecurityDomainOperation) Poll(ctx context.Context) error {
	if op.done {
		return op.err
	}
	var st wire.SecurityDomainStatus
	resp, err := op.c.DoJSON(ctx, http.MethodGet, op.statusURL, nil, &st)
	if err != nil {
		return err
	}
	if st.Status == "" {
		return fmt.Errorf("client: the security-domain %s status has no status", op.kind)
	}
	op.status = st
	op.wait = retryAfter(resp, 0)
	switch strings.ToLower(st.Status) {
	case "success", "succeeded":
		op.done = true
	case "failed", "canceled", "cancelled":
		op.done = true
		msg := st.StatusDetails
		if msg == "" {
			msg = "the security-domain " + op.kind + " ended " + strings.ToLower(st.Status)
		}
		kind := strings.ToUpper(op.kind[:1]) + op.kind[1:]
		op.err = &Error{Status: resp.StatusCode, Code: "SecurityDomain" + kind + "Failed", Message: msg}
	}
	return op.err
}

// Wait polls until the operation ends and returns its final status (also
// when it failed, with the error of [SecurityDomainOperation.Poll]). The
// first poll goes out at once; later ones wait as long as the status
// route's Retry-After asks, else [Config.PollInterval] (the 5 s that the
// first answer's Retry-After suggests are not waited: Tresor finishes
// security-domain operations before it answers). progress, if not nil, is
// called with each status seen.
func (op *SecurityDomainOperation) Wait(ctx context.Context, progress func(status string)) (*wire.SecurityDomainStatus, error) {
	for {
		err := op.Poll(ctx)
		if op.done {
			if progress != nil {
				progress(op.status.Status)
			}
			st := op.status
			return &st, err
		}
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(op.status.Status)
		}
		wait := op.wait
		if wait <= 0 {
			wait = op.c.poll
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
