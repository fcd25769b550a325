package client

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tresor/internal/wire"
)

// Bounds of the wait a server's Retry-After sets between polls; "0" means
// "soon" rather than at once.
const (
	minRetryAfter = 20 * time.Millisecond
	maxRetryAfter = 30 * time.Second
)

// Operation is a long-running operation started by a Begin… method, in
// ARM's manner: the client polls the Azure-AsyncOperation status URL, else
// the Location URL (202 until done), else the resource itself until its
// provisioningState is terminal. An Operation is not safe for concurrent use.
type Operation struct {
	c           *Client
	statusURL   string // Azure-AsyncOperation
	locationURL string // Location of a 202
	resourceURL string // resource whose provisioningState to poll
	wait        time.Duration
	status      string
	done        bool
	err         error
}

// newOperation derives the operation from the first response of a
// long-running call. resourceURL and state are the resource and its
// provisioningState in that response, for PUTs; empty otherwise.
func (c *Client) newOperation(resp *http.Response, resourceURL, state string) *Operation {
	op := &Operation{c: c, wait: retryAfter(resp, c.poll), status: "InProgress"}
	switch {
	case resp.Header.Get("Azure-AsyncOperation") != "":
		op.statusURL = resp.Header.Get("Azure-AsyncOperation")
	case resp.StatusCode == http.StatusAccepted && resp.Header.Get("Location") != "":
		op.locationURL = resp.Header.Get("Location")
	case resourceURL != "" && state != "" && !terminal(state):
		op.resourceURL = resourceURL
		op.status = state
	default:
		op.done = true
		op.status = "Succeeded"
	}
	return op
}

// Done reports whether the operation has ended (successfully or not).
func (op *Operation) Done() bool { return op.done }

// Status returns the last status seen: "InProgress", "Succeeded", "Failed",
// or a provisioning state such as "Provisioning".
func (op *Operation) Status() string { return op.status }

// Poll asks the server once for the operation's status, unless it has
// already ended. It returns the operation's error once it has failed.
func (op *Operation) Poll(ctx context.Context) error {
	if op.done {
		return op.err
	}
	switch {
	case op.statusURL != "":
		var st wire.OperationStatus
		resp, err := op.c.call(ctx, http.MethodGet, op.statusURL, nil, &st)
		if err != nil {
			return err
		}
		op.wait = retryAfter(resp, op.wait)
		op.status = st.Status
		if terminal(st.Status) {
			op.finish(st.Status, st.Error, resp.StatusCode)
		}
	case op.locationURL != "":
		resp, err := op.c.call(ctx, http.MethodGet, op.locationURL, nil, nil)
		if err != nil {
			return err
		}
		op.wait = retryAfter(resp, op.wait)
		if resp.StatusCode != http.StatusAccepted {
			op.done, op.status = true, "Succeeded"
		}
	case op.resourceURL != "":
		var res struct {
			Properties struct {
				ProvisioningState string `json:"provisioningState"`
				StatusMessage     string `json:"statusMessage"`
			} `json:"properties"`
		}
		resp, err := op.c.call(ctx, http.MethodGet, op.resourceURL, nil, &res)
		if err != nil {
			return err
		}
		op.wait = retryAfter(resp, op.wait)
		st := res.Properties.ProvisioningState
		op.status = st
		if terminal(st) {
			var detail *wire.ErrorDetail
			if !strings.EqualFold(st, "Succeeded") {
				detail = &wire.ErrorDetail{Code: "Provisioning" + st, Message: res.Properties.StatusMessage}
			}
			op.finish(st, detail, resp.StatusCode)
		}
	}
	return op.err
}

// finish records a terminal status.
func (op *Operation) finish(status string, detail *wire.ErrorDetail, httpStatus int) {
	op.done = true
	if strings.EqualFold(status, "Succeeded") || strings.EqualFold(status, "Success") {
		return
	}
	e := &Error{Status: httpStatus, Code: "Operation" + status, Message: "the operation ended " + strings.ToLower(status)}
	if detail != nil && detail.Code != "" {
		e.Code, e.Message = detail.Code, detail.Message
		if detail.InnerError != nil {
			e.InnerCode = detail.InnerError.Code
		}
	}
	op.err = e
}

// Wait polls until the operation ends, waiting between polls as long as the
// server's Retry-After asks (at most 30s) or [Config.PollInterval]. progress,
// if not nil, is called with each status seen.
func (op *Operation) Wait(ctx context.Context, progress func(status string)) error {
	for {
		if err := op.Poll(ctx); err != nil || op.done {
			if progress != nil && op.done {
				progress(op.status)
			}
			return err
		}
		if progress != nil {
			progress(op.status)
		}
		t := time.NewTimer(op.wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// terminal reports whether an ARM status or provisioning state is final.
func terminal(status string) bool {
	switch strings.ToLower(status) {
	case "succeeded", "success", "failed", "canceled", "cancelled":
		return true
	}
	return false
}

// retryAfter reads a Retry-After in seconds, or returns def.
func retryAfter(resp *http.Response, def time.Duration) time.Duration {
	if resp == nil {
		return def
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return def
	}
	return min(max(time.Duration(n)*time.Second, minRetryAfter), maxRetryAfter)
}
