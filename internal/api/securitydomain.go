package api

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"

	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/wire"
)

// hsmBase is the base URL of the request's instance: its hsmUri without
// the final slash, which serveHSM puts in the request's reqInfo. It comes from the
// configuration, never from the Host header (which routes without case or
// port, and is the client's to forge).
func hsmBase(r *http.Request) string {
	return info(r).base
}

func sdAccepted(w http.ResponseWriter, r *http.Request, kind string) {
	w.Header().Set("Azure-AsyncOperation", hsmBase(r)+"/securitydomain/"+kind+"/pending")
	w.Header().Set("Retry-After", "1") // operations finish before the answer
}

// sdDownload answers POST /securitydomain/download: 202 with the
// security-domain file as JSON text in "value".
func (a *API) sdDownload(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req wire.CertificateInfo
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Required == nil {
		return fault.New(fault.BadParameter, "BadParameter", "required (the quorum) is missing")
	}
	var ders [][]byte
	for i, c := range req.Certificates {
		if len(c.X5C) == 0 {
			return fault.New(fault.BadParameter, "BadParameter", "certificates[%d] has no x5c certificate", i)
		}
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.X5C[0]))
		if err != nil {
			return fault.New(fault.BadParameter, "BadParameter", "certificates[%d].x5c[0] is not standard base64", i)
		}
		ders = append(ders, der)
	}
	file, err := a.deps.Instances.DownloadSecurityDomain(r.Context(), rc.instance, ders, *req.Required)
	if err != nil {
		return err
	}
	sdAccepted(w, r, "download")
	writeJSON(w, http.StatusAccepted, wire.SecurityDomainValue{Value: string(file)})
	return nil
}

// sdPending reports the last security-domain operation: upload/pending
// reports downloads too (the Azure CLI polls it after a download).
func (a *API) sdPending(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	op := rc.instance.SDOperation
	download := strings.HasSuffix(r.URL.Path, "/download/pending")
	if op == nil || (download && op.Kind != instances.SDDownload) {
		if download && rc.instance.ActivationStatus == instances.Active {
			writeJSON(w, http.StatusOK, wire.SecurityDomainStatus{Status: instances.SDSuccess, StatusDetails: "the HSM is active"})
			return nil
		}
		return fault.New(fault.NotFound, "NotFound", "no security-domain operation has run on the managed HSM '%s'", rc.instance.Name)
	}
	writeJSON(w, http.StatusOK, wire.SecurityDomainStatus{Status: op.Status, StatusDetails: op.Details})
	return nil
}

// sdTransferKey answers GET /securitydomain/upload: the exchange key as a
// JWK in a JSON string, with its certificate in x5c.
func (a *API) sdTransferKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	der, err := a.deps.Instances.TransferKey(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fault.New(fault.Internal, "InternalError", "the exchange key is not an RSA key")
	}
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	b64u := base64.RawURLEncoding.EncodeToString
	jwk := map[string]any{
		"kid": hsmBase(r) + "/transfer_key", "kty": "RSA", "key_ops": []string{"encrypt", "wrapKey"},
		"n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes()), "alg": "RSA-OAEP-256",
		"x5c": []string{base64.StdEncoding.EncodeToString(der)}, "x5t": b64u(s1[:]), "x5t#S256": b64u(s256[:]),
	}
	j, err := json.Marshal(jwk)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.TransferKey{KeyFormat: "jwk", TransferKey: string(j)})
	return nil
}

// sdUpload answers POST /securitydomain/upload with 202 and the operation's
// status; a blob that does not open gives status Failed saying why.
func (a *API) sdUpload(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req wire.SecurityDomainValue
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Value) == "" {
		return fault.New(fault.BadParameter, "BadParameter", "value (the upload blob as JSON text) is missing")
	}
	op, err := a.deps.Instances.UploadSecurityDomain(r.Context(), rc.instance, []byte(req.Value))
	if err != nil {
		return err
	}
	sdAccepted(w, r, "upload")
	writeJSON(w, http.StatusAccepted, wire.SecurityDomainStatus{Status: op.Status, StatusDetails: op.Details})
	return nil
}
