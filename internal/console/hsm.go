package console

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// regionData is the region page's.
type regionData struct {
	HSMs    []wire.ManagedHSM
	Deleted []wire.DeletedManagedHSM
	// ListError and DeletedError say why a list could not be read.
	ListError, DeletedError *flash
}

func (c *Console) regionPage(w http.ResponseWriter, r *http.Request, s *session) {
	cx, cl, _, err := c.api(r, s, "")
	var d regionData
	if err == nil {
		if d.HSMs, err = cl.ListHSMs(cx, ""); err != nil {
			f := errorFlash(err)
			d.ListError = &f
		}
		if d.Deleted, err = cl.ListDeletedHSMs(cx); err != nil {
			f := errorFlash(err)
			d.DeletedError = &f
		}
	} else {
		f := errorFlash(err)
		d.ListError = &f
	}
	c.render(w, r, s, http.StatusOK, "region", view{Title: "Region", Nav: "region", Data: d})
}

func (c *Console) createHSM(r *http.Request, s *session) string {
	f := r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	rg := strings.TrimSpace(f.Get("resource_group"))
	if rg == "" {
		rg = "tresor"
	}
	var admins []string
	for _, a := range strings.FieldsFunc(f.Get("administrators"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		admins = append(admins, strings.TrimSpace(a))
	}
	if len(admins) == 0 {
		admins = []string{s.account.ObjectID}
	}
	softDelete := true
	hsm := wire.ManagedHSM{Location: c.regionName(), SKU: &wire.SKU{Family: "B", Name: "Standard_B1"},
		Properties: wire.ManagedHSMProps{InitialAdminObjectIDs: admins, EnableSoftDelete: &softDelete}}
	if v := strings.TrimSpace(f.Get("retention_days")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.addFlash(flash{Error: true, Code: "BadParameter", Message: "soft-delete retention: not a number of days"})
			return Prefix + "/region"
		}
		hsm.Properties.SoftDeleteRetentionInDays = &n
	}
	if f.Get("purge_protection") == "on" {
		t := true
		hsm.Properties.EnablePurgeProtection = &t
	}
	cx, cl, _, err := c.api(r, s, "")
	if err == nil {
		_, err = cl.CreateHSM(cx, rg, name, hsm)
	}
	if err != nil {
		s.addFlash(errorFlash(err))
		return Prefix + "/region"
	}
	s.addFlash(flash{Message: "Created the HSM " + name + ". Activate it by downloading its security domain."})
	return hsmPath(name)
}

func (c *Console) deletedHSMAction(r *http.Request, s *session) string {
	loc, name := r.PathValue("loc"), r.PathValue("name")
	cx, cl, _, err := c.api(r, s, "")
	if err == nil {
		switch r.PathValue("action") {
		case "purge":
			err = cl.PurgeHSM(cx, loc, name)
			if err == nil {
				s.addFlash(flash{Message: "Purged the HSM " + name + "."})
			}
		case "recover":
			_, err = cl.RecoverHSM(cx, loc, name)
			if err == nil {
				s.addFlash(flash{Message: "Recovered the HSM " + name + "."})
			}
		default:
			err = errors.New("unknown action")
		}
	}
	if err != nil {
		s.addFlash(errorFlash(err))
	}
	return Prefix + "/region"
}

func (c *Console) deleteHSM(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	cx, cl, _, err := c.api(r, s, "")
	if err == nil {
		var h *wire.ManagedHSM
		if h, err = cl.FindHSM(cx, name); err == nil {
			err = cl.DeleteHSM(cx, client.ResourceGroup(h.ID), h.Name)
		}
	}
	if err != nil {
		s.addFlash(errorFlash(err))
		return hsmPath(name)
	}
	s.addFlash(flash{Message: "Deleted the HSM " + name + ": it stays recoverable until its purge date."})
	return Prefix + "/region"
}

// hsmData is the HSM page's.
type hsmData struct {
	Name          string
	HSM           *wire.ManagedHSM
	ResourceGroup string
	HSMURL        string
	Error         *flash // the HSM could not be read
	Active        bool
	Timeline      any // template.HTML
	TimelineNotes []string
	Policy        *wire.BackupPolicy
}

func (c *Console) hsmPage(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("hsm")
	d := hsmData{Name: name}
	cx, cl, hsmURL, err := c.api(r, s, name)
	d.HSMURL = hsmURL
	status := http.StatusOK
	if err == nil {
		d.HSM, err = cl.FindHSM(cx, name)
	}
	if err != nil {
		f := errorFlash(err)
		d.Error = &f
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status >= 400 {
			status = ae.Status
		}
	} else {
		d.Name = d.HSM.Name
		d.ResourceGroup = client.ResourceGroup(d.HSM.ID)
		sdp := d.HSM.Properties.SecurityDomainProperties
		d.Active = sdp != nil && sdp.ActivationStatus == "Active"
	}
	if d.Active {
		if p, err := cl.GetBackupPolicy(cx, hsmURL); err == nil {
			d.Policy = &p
		}
		events, notes := c.timelineEvents(cx, cl, hsmURL, name, d.Policy)
		d.Timeline = timelineSVG(bucket(events, c.cfg.Now()))
		d.TimelineNotes = notes
	}
	c.render(w, r, s, status, "hsm", view{Title: name, Nav: "hsm", HSM: name, Data: d})
}

// timelineEvents gathers the timeline's events through the API, with the
// viewer's rights: the jobs started through the console (their status from
// the API), the backup policy's last runs, and the keys' and versions'
// created and updated times. What the viewer may not read is left out
// and named in the notes.
func (c *Console) timelineEvents(cx context.Context, cl *client.Client, hsmURL, hsm string, policy *wire.BackupPolicy) ([]event, []string) {
	var events []event
	var notes []string
	since := c.cfg.Now().AddDate(0, 0, -timelineDays)
	seen := map[string]bool{}
	for _, j := range c.records.list(hsm) {
		if j.Started.Before(since) || (j.Kind != kindBackup && j.Kind != kindDrill) {
			continue
		}
		st, err := c.jobStatus(cx, cl, hsmURL, j)
		if err != nil {
			notes = append(notes, fmt.Sprintf("job %s: %s", j.ID, errorFlash(err).Code))
			continue
		}
		if st.Status == wire.JobInProgress {
			continue
		}
		seen[j.ID] = true
		events = append(events, event{At: j.Started, Kind: j.Kind, OK: st.Status == wire.JobSucceeded})
	}
	if policy != nil {
		for _, run := range []*wire.BackupRun{policy.LastSuccess, policy.LastFailure} {
			if run == nil || seen[run.JobID] && run.JobID != "" {
				continue
			}
			if t, err := time.Parse(time.RFC3339, run.Time); err == nil {
				events = append(events, event{At: t, Kind: kindBackup, OK: run.Error == nil})
			}
		}
	}
	keys, err := cl.ListKeys(cx, hsmURL, 0)
	if err != nil {
		notes = append(notes, "key changes not shown: "+errorFlash(err).Code)
	}
	for _, k := range keys {
		if k.Attributes.Created != nil {
			events = append(events, event{At: time.Unix(*k.Attributes.Created, 0), Kind: "key"})
		}
		if k.Attributes.Updated != nil && k.Attributes.Created != nil && *k.Attributes.Updated != *k.Attributes.Created {
			events = append(events, event{At: time.Unix(*k.Attributes.Updated, 0), Kind: "key"})
		}
	}
	return events, notes
}

// maxCertFile bounds one uploaded certificate.
const maxCertFile = 64 << 10

// activate downloads the security domain encrypted to the uploaded
// custodian certificates (public keys only: the console never sees a
// custodian private key), which activates the HSM, and keeps the file for
// the session to download once.
func (c *Console) activate(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	back := hsmPath(name)
	fail := func(err error) string { s.addFlash(errorFlash(err)); return back }
	quorum, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("quorum")))
	if err != nil {
		return fail(errors.New("quorum: not a number"))
	}
	var jwks []wire.SecurityDomainJWK
	if r.MultipartForm != nil {
		for _, fh := range r.MultipartForm.File["certs"] {
			f, err := fh.Open()
			if err != nil {
				return fail(err)
			}
			data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
			f.Close()
			if err != nil {
				return fail(err)
			}
			ders, err := certificates(data)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", fh.Filename, err))
			}
			for _, der := range ders {
				jwk, err := client.CustodianJWK(der)
				if err != nil {
					return fail(fmt.Errorf("%s: %w", fh.Filename, err))
				}
				jwks = append(jwks, jwk)
			}
		}
	}
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err != nil {
		return fail(err)
	}
	// The API checks the number of certificates and the quorum.
	sd, op, err := cl.BeginDownloadSecurityDomain(cx, hsmURL, jwks, quorum)
	if err != nil {
		return fail(err)
	}
	if _, err := op.Wait(cx, nil); err != nil {
		return fail(err)
	}
	s.addDownload(name+"-SecurityDomain.json", "application/json", sd, c.cfg.Now())
	s.addFlash(flash{Message: fmt.Sprintf("Activated %s: its security domain is encrypted to %d certificates with a quorum of %d. "+
		"Download the security-domain file now and keep it with the custodians' keys: the console keeps it for 10 minutes, for this session only.", name, len(jwks), quorum)})
	return back
}

// certificates reads the certificates of a file: PEM blocks, or one DER
// certificate.
func certificates(data []byte) ([][]byte, error) {
	if len(data) > maxCertFile {
		return nil, errors.New("the file is too large for a certificate")
	}
	var out [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return nil, errors.New("this file holds a private key: upload only the custodian's certificate; the console never takes a custodian private key")
		}
	}
	if len(out) == 0 {
		if len(data) > 0 && data[0] == 0x30 {
			return [][]byte{data}, nil
		}
		return nil, errors.New("no certificate found (want PEM or DER)")
	}
	return out, nil
}

// recovery puts the HSM into recovery mode and offers its exchange
// certificate for download.
func (c *Console) recovery(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	cx, cl, hsmURL, err := c.api(r, s, name)
	var der []byte
	if err == nil {
		der, err = cl.SecurityDomainTransferKey(cx, hsmURL)
	}
	if err != nil {
		s.addFlash(errorFlash(err))
		return hsmPath(name)
	}
	s.addDownload(name+"-exchange.cer", "application/x-pem-file", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c.cfg.Now())
	s.addFlash(flash{Message: "Recovery started for " + name + ". Download the exchange certificate, build the upload blob offline with " +
		"tresor security-domain restore-blob (the custodians' private keys never come to the console), then upload the blob here."})
	return hsmPath(name)
}

// uploadSD uploads a restore blob built offline.
func (c *Console) uploadSD(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	back := hsmPath(name)
	if r.MultipartForm == nil || len(r.MultipartForm.File["blob"]) != 1 {
		s.addFlash(flash{Error: true, Code: "BadParameter", Message: "choose one upload blob file"})
		return back
	}
	f, err := r.MultipartForm.File["blob"][0].Open()
	if err != nil {
		s.addFlash(errorFlash(err))
		return back
	}
	blob, err := io.ReadAll(io.LimitReader(f, fileForm))
	f.Close()
	if err != nil {
		s.addFlash(errorFlash(err))
		return back
	}
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err == nil {
		var op *client.SecurityDomainOperation
		if _, op, err = cl.BeginUploadSecurityDomain(cx, hsmURL, blob); err == nil {
			_, err = op.Wait(cx, nil)
		}
	}
	if err != nil {
		s.addFlash(errorFlash(err))
		return back
	}
	s.addFlash(flash{Message: "Uploaded the security domain: " + name + " is activated."})
	return back
}

// jobStatus reads a job's status from the API.
func (c *Console) jobStatus(cx context.Context, cl *client.Client, hsmURL string, j jobRef) (client.JobStatus, error) {
	var st client.JobStatus
	_, err := cl.DoJSON(cx, http.MethodGet, strings.TrimRight(hsmURL, "/")+"/"+j.route()+"/"+url.PathEscape(j.ID)+"/pending", nil, &st)
	return st, err
}
