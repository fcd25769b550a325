package instances

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/securitydomain"
	"tresor/internal/store"
	"tresor/internal/uuid"
)

// Security-domain operation kinds and statuses (spec §2.2).
const (
	SDDownload   = "download"
	SDUpload     = "upload"
	SDInProgress = "InProgress"
	SDSuccess    = "Success"
	SDFailed     = "Failed"
)

// SDOperation is the record of a security-domain operation.
type SDOperation struct {
	Kind    string    `json:"kind"`
	Status  string    `json:"status"`
	Details string    `json:"details,omitempty"`
	Time    time.Time `json:"time"`
}

// The internal format of the security domain's tagged blobs. The root key
// travels in hsm_backup; the two other blobs name it by its public id, so
// that blobs of different security domains cannot be mixed.
const (
	sdRootFormat   = "tresor.sd.root/v1"
	sdMetaFormat   = "tresor.sd.meta/v1"
	sdBackupFormat = "tresor.sd.backup/v1"
)

type sdRoot struct {
	Format string `json:"format"`
	Root   []byte `json:"root"`
}

type sdMeta struct {
	Format  string    `json:"format"`
	RootID  string    `json:"rootId"`
	Source  string    `json:"source"`
	Tenant  string    `json:"tenant"`
	Created time.Time `json:"created"`
}

// exchangeKeyBits is the size of the RSA exchange (transfer) key.
const exchangeKeyBits = 3072

func (s *Service) sdBlobs(in Instance, root *barrier.RootKey) ([]securitydomain.Blob, error) {
	r, err := json.Marshal(sdRoot{Format: sdRootFormat, Root: root.InsecureBytes()})
	if err != nil {
		return nil, err
	}
	meta := sdMeta{Format: sdMetaFormat, RootID: root.ID(), Source: in.Name, Tenant: in.TenantID, Created: in.Created}
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	meta.Format = sdBackupFormat
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	return []securitydomain.Blob{
		{Tag: securitydomain.TagHSMBackup, Data: r},
		{Tag: securitydomain.TagBaseEnclaveBackup, Data: m},
		{Tag: securitydomain.TagPartitionEnclaveBackup, Data: b},
	}, nil
}

// rootFromBlobs reads the root key carried by a security domain's blobs.
func rootFromBlobs(blobs []securitydomain.Blob) (*barrier.RootKey, error) {
	if err := securitydomain.RequireTags(blobs, securitydomain.TagHSMBackup, securitydomain.TagBaseEnclaveBackup, securitydomain.TagPartitionEnclaveBackup); err != nil {
		return nil, err
	}
	var r sdRoot
	var meta, backup sdMeta
	for _, b := range blobs {
		var err error
		switch b.Tag {
		case securitydomain.TagHSMBackup:
			err = json.Unmarshal(b.Data, &r)
		case securitydomain.TagBaseEnclaveBackup:
			err = json.Unmarshal(b.Data, &meta)
		case securitydomain.TagPartitionEnclaveBackup:
			err = json.Unmarshal(b.Data, &backup)
		}
		if err != nil {
			return nil, fmt.Errorf("the %s blob is not a Tresor security domain", b.Tag)
		}
	}
	if r.Format != sdRootFormat || meta.Format != sdMetaFormat || backup.Format != sdBackupFormat {
		return nil, errors.New("the security domain was not made by Tresor (unknown blob format)")
	}
	root, err := barrier.RootKeyFromBytes(r.Root)
	if err != nil {
		return nil, errors.New("the security domain's root key has the wrong size")
	}
	if meta.RootID != root.ID() || backup.RootID != root.ID() {
		return nil, errors.New("the security domain's blobs do not belong together")
	}
	return root, nil
}

// DownloadSecurityDomain builds the instance's security-domain file for
// the custodian certificates (DER) with the given quorum. A not activated
// instance becomes Active; an active one re-encrypts the same root.
func (s *Service) DownloadSecurityDomain(ctx context.Context, in Instance, certs [][]byte, required int) ([]byte, error) {
	parsed := make([]*securitydomain.Certificate, 0, len(certs))
	for i, der := range certs {
		c, err := securitydomain.ParseCertificate(der)
		if err != nil {
			return nil, fault.Wrap(err, fault.BadParameter, "BadParameter", "certificates[%d]: %v", i, err)
		}
		parsed = append(parsed, c)
	}
	root, err := s.Root(in)
	if err != nil {
		return nil, err
	}
	blobs, err := s.sdBlobs(in, root)
	if err != nil {
		return nil, err
	}
	file, err := securitydomain.BuildFile(blobs, parsed, required, rand.Reader)
	if err != nil {
		return nil, fault.Wrap(err, fault.BadParameter, "BadParameter", "%v", err)
	}
	p := in.Properties
	p.ActivationStatus, p.ActivationMessage = Active, ""
	p.ExchangeKey, p.ExchangeCert = nil, nil
	p.SDOperation = &SDOperation{Kind: SDDownload, Status: SDSuccess, Time: s.cfg.Now().UTC(),
		Details: fmt.Sprintf("security domain downloaded for %d certificates with quorum %d", len(certs), required)}
	if _, err := s.ApplyUpdate(ctx, in, p, store.UpdateInstance{}); err != nil {
		return nil, err
	}
	return file, nil
}

// TransferKey returns the instance's exchange certificate (DER), making the
// key pair when the instance enters recovery. Only an instance that is not
// activated takes a security-domain upload.
func (s *Service) TransferKey(ctx context.Context, in Instance) ([]byte, error) {
	if in.ActivationStatus == Active {
		return nil, fault.New(fault.Conflict, "HSMAlreadyActivated",
			"the managed HSM '%s' is already activated; a security domain can only be uploaded to an HSM that is not activated", in.Name)
	}
	if len(in.ExchangeCert) > 0 {
		return in.ExchangeCert, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, exchangeKeyBits)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := s.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "transfer-key"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	p := in.Properties
	p.ExchangeKey, p.ExchangeCert = pkcs8, der
	p.ActivationMessage = "The HSM is in recovery mode: it waits for a security-domain upload."
	if _, err := s.ApplyUpdate(ctx, in, p, store.UpdateInstance{}); err != nil {
		if fault.KindOf(err) == fault.Conflict { // made concurrently: use that one
			if cur, gerr := s.Get(ctx, in.Key); gerr == nil && len(cur.ExchangeCert) > 0 {
				return cur.ExchangeCert, nil
			}
		}
		return nil, err
	}
	return der, nil
}

// UploadSecurityDomain opens an upload blob with the instance's exchange key
// and, if it opens, makes the instance Active with the root key it carries
// (re-sealing the instance's values under it). A blob that does not open is
// recorded as a Failed operation that says why, and nothing else changes.
func (s *Service) UploadSecurityDomain(ctx context.Context, in Instance, blob []byte) (SDOperation, error) {
	if in.ActivationStatus == Active {
		return SDOperation{}, fault.New(fault.Conflict, "HSMAlreadyActivated",
			"the managed HSM '%s' is already activated; a security domain can only be uploaded to an HSM that is not activated", in.Name)
	}
	if len(in.ExchangeKey) == 0 {
		return SDOperation{}, fault.New(fault.Conflict, "NoExchangeKey",
			"the managed HSM '%s' has no exchange key: put it in recovery mode first (GET /securitydomain/upload, tresor security-domain init-recovery)", in.Name)
	}
	keyAny, err := x509.ParsePKCS8PrivateKey(in.ExchangeKey)
	if err != nil {
		return SDOperation{}, fmt.Errorf("instances: exchange key of %s: %w", in.Key, err)
	}
	op := SDOperation{Kind: SDUpload, Time: s.cfg.Now().UTC()}
	root, openErr := s.openUpload(blob, in.ExchangeCert, keyAny.(*rsa.PrivateKey))
	p := in.Properties
	if openErr != nil {
		op.Status, op.Details = SDFailed, openErr.Error()
		p.SDOperation = &op
		if _, err := s.ApplyUpdate(ctx, in, p, store.UpdateInstance{}); err != nil {
			return SDOperation{}, err
		}
		return op, nil
	}
	op.Status, op.Details = SDSuccess, "security domain restored; the HSM is active (root key id "+root.ID()+")"
	p.SDOperation = &op
	p.ActivationStatus, p.ActivationMessage = Active, ""
	p.ExchangeKey, p.ExchangeCert = nil, nil
	if err := s.resealAndActivate(ctx, in, root, p); err != nil {
		return SDOperation{}, err
	}
	return op, nil
}

// openUpload opens an upload blob; its errors are messages for the user.
func (s *Service) openUpload(blob, certDER []byte, key *rsa.PrivateKey) (*barrier.RootKey, error) {
	blobs, err := securitydomain.OpenUploadBlob(blob, certDER, key)
	var te *securitydomain.TamperedError
	switch {
	case err == nil:
	case errors.Is(err, securitydomain.ErrWrongExchangeKey):
		return nil, errors.New("the upload blob was made for another exchange key: build it with the certificate that init-recovery wrote for this HSM")
	case errors.As(err, &te):
		where := te.Field
		if te.Tag != "" {
			where += " (" + te.Tag + ")"
		}
		return nil, fmt.Errorf("the upload blob is damaged or tampered with: %s does not authenticate", where)
	case errors.Is(err, securitydomain.ErrMissingTag), errors.Is(err, securitydomain.ErrDuplicateTag):
		return nil, fmt.Errorf("the upload blob is incomplete: %v", err)
	default:
		return nil, fmt.Errorf("the upload blob is not valid: %v", err)
	}
	root, err := rootFromBlobs(blobs)
	if err != nil {
		return nil, fmt.Errorf("the upload blob does not carry a usable security domain: %v", err)
	}
	return root, nil
}

// resealChunk is how many values one StageValues command of a re-seal carries.
const resealChunk = 1000

// resealAndActivate moves every value of the instance from its current root
// to root and gives it the properties p, as one staged replace: the
// instance is staging from the first read to the swap (writes are refused
// meanwhile, so the re-sealed copy is complete), the values are staged in
// chunks, and one CommitStage swaps values, root and properties. A failure
// aborts the stage and leaves the instance as it was.
func (s *Service) resealAndActivate(ctx context.Context, in Instance, root *barrier.RootKey, p Properties) (err error) {
	oldB, err := s.Barrier(in)
	if err != nil {
		return err
	}
	newB, err := barrier.New(root, barrier.Storage, in.Key)
	if err != nil {
		return err
	}
	wrapped, err := barrier.WrapRootKey(s.seal, root, in.Key)
	if err != nil {
		return err
	}
	props, err := s.sealProps(in.Key, p)
	if err != nil {
		return err
	}
	stage := "sd-upload-" + uuid.New()
	if err := s.st.Apply(ctx, store.BeginStage{Name: in.Key, Expect: in.Generation, Stage: stage}); err != nil {
		return s.mapErr(err, in.Name)
	}
	defer func() {
		if err != nil {
			if aerr := s.st.Apply(context.Background(), store.AbortStage{Name: in.Key, Stage: stage}); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
	}()
	var buckets []string
	if err := s.st.View(ctx, func(r store.Reader) error {
		var err error
		buckets, err = r.InstanceBuckets(in.Key)
		return err
	}); err != nil {
		return err
	}
	for _, b := range buckets {
		after := ""
		for {
			var chunk []store.Value
			err := s.st.View(ctx, func(r store.Reader) error {
				return r.ForEach(in.Key, b, after, func(k string, v []byte) error {
					if len(chunk) == resealChunk {
						return store.ErrStop
					}
					pt, err := oldB.Open(b+"/"+k, v)
					if err != nil {
						return fmt.Errorf("instances: reseal %s/%s of %s: %w", b, k, in.Key, err)
					}
					ct, err := newB.Seal(b+"/"+k, pt)
					if err != nil {
						return err
					}
					chunk = append(chunk, store.Value{Bucket: b, Key: k, Value: ct})
					return nil
				})
			})
			if err != nil {
				return err
			}
			if len(chunk) > 0 {
				if err := s.st.Apply(ctx, store.StageValues{Name: in.Key, Stage: stage, Values: chunk}); err != nil {
					return err
				}
			}
			if len(chunk) < resealChunk {
				break
			}
			after = chunk[len(chunk)-1].Key
		}
	}
	err = s.st.Apply(ctx, store.CommitStage{Name: in.Key, Stage: stage, Expect: in.Generation + 1,
		Buckets: buckets, Properties: props, WrappedRoot: wrapped})
	return s.mapErr(err, in.Name)
}
