package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// HSMURL returns the data-plane endpoint of the HSM called name,
// https://{name}.{dnsSuffix}[:{port}], with the port of the region's HSM
// resource (the region endpoint's if the region names none). It fetches
// the region info if needed.
func (c *Client) HSMURL(ctx context.Context, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "./:@?#% ") {
		return "", fmt.Errorf("client: invalid HSM name %q", name)
	}
	r, err := c.Region(ctx)
	if err != nil {
		return "", err
	}
	port := c.base.Port()
	if r.HSMResource != "" {
		u, err := url.Parse(r.HSMResource)
		if err != nil {
			return "", fmt.Errorf("client: region hsmResource %q: %w", r.HSMResource, err)
		}
		port = u.Port()
	}
	host := strings.ToLower(name) + "." + strings.TrimSuffix(r.DNSSuffix, ".")
	if port != "" && port != "443" {
		host += ":" + port
	}
	return "https://" + host, nil
}

// Do sends req with a bearer token for its host (the region endpoint or an
// HSM of the region; any other host is refused) and returns the response
// as is: the caller closes its body and checks its status, e.g. with
// [CheckResponse]. The request's context is replaced by ctx.
func (c *Client) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, errors.New("client: request has no URL")
	}
	resource, err := c.resourceFor(ctx, req.URL)
	if err != nil {
		return nil, err
	}
	tok, err := c.Token(ctx, resource)
	if err != nil {
		return nil, err
	}
	req = req.WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	return c.hc.Do(req)
}

// DoJSON sends a JSON request to u (an absolute URL on the region endpoint
// or an HSM of the region) with a bearer token, marshalling in as the body
// unless nil, and decodes a 2xx answer into out unless nil. Other statuses
// become an [*Error]. The returned response's body has been read and
// closed; its status and headers (e.g. Azure-AsyncOperation) remain.
func (c *Client) DoJSON(ctx context.Context, method, u string, in, out any) (*http.Response, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if !parsed.IsAbs() {
		return nil, fmt.Errorf("client: DoJSON needs an absolute URL, got %q", u)
	}
	return c.call(ctx, method, u, in, out)
}

// CheckResponse returns nil for a 2xx response and an [*Error] decoded from
// the body otherwise (it then reads, but does not close, the body).
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	data, _ := readAll(resp)
	return decodeError(resp.StatusCode, data)
}
