package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// GrantClientCredentials is the only grant type the token endpoint supports
// (RFC 6749 §4.4).
const GrantClientCredentials = "client_credentials"

// TokenRequest is a token-endpoint request, already decoded from the form
// (and from HTTP Basic authentication for client_secret_basic) by the HTTP
// layer.
type TokenRequest struct {
	TenantID     string // the {tenant} path segment
	GrantType    string // grant_type; must be "client_credentials"
	ClientID     string // client_id
	ClientSecret string // client_secret
	Scope        string // v2: "{resource}/.default", optionally with "openid offline_access profile"
	Resource     string // v1: resource (used when Scope is empty)
}

// TokenResponse is a successful token response (RFC 6749 §5.1) in Entra ID's
// shape; the HTTP layer encodes it as JSON.
type TokenResponse struct {
	TokenType    string `json:"token_type"` // "Bearer"
	ExpiresIn    int    `json:"expires_in"` // seconds
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// oidcScopes may accompany "{resource}/.default": azidentity and MSAL add them
// to every request, and Entra ignores them for client credentials.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// Token runs the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) as Entra
// ID's v2 token endpoint does: it checks the tenant, authenticates the client
// against dir, resolves the requested resource from Scope (or Resource) and
// issues a token whose aud is the matching entry of allowedAudiences (a
// trailing slash on the request is ignored).
//
// Request problems are returned as an *[OAuthError] ([OAuthInvalidRequest] for
// a wrong tenant or a missing parameter, [OAuthInvalidClient] for an unknown
// client or a wrong secret, with the same message for both,
// [OAuthUnsupportedGrantType], [OAuthInvalidScope] for a malformed scope or a
// resource not in allowedAudiences). Any other error (from dir, or signing) is
// an internal failure.
func (i *Issuer) Token(ctx context.Context, dir PrincipalDirectory, req TokenRequest, allowedAudiences []string) (TokenResponse, error) {
	if !strings.EqualFold(req.TenantID, i.tenant) {
		return TokenResponse{}, oauthError(OAuthInvalidRequest, 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", quoteInput(req.TenantID)))
	}
	switch req.GrantType {
	case GrantClientCredentials:
	case "":
		return TokenResponse{}, missingParameter("grant_type")
	default:
		return TokenResponse{}, oauthError(OAuthUnsupportedGrantType, 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'. Only 'client_credentials' is supported.", quoteInput(req.GrantType)))
	}
	if req.ClientID == "" {
		return TokenResponse{}, missingParameter("client_id")
	}
	if req.ClientSecret == "" {
		return TokenResponse{}, oauthError(OAuthInvalidClient, 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	resource, err := requestedResource(req)
	if err != nil {
		return TokenResponse{}, err
	}

	p, err := dir.PrincipalByClientID(ctx, req.ClientID)
	switch {
	case errors.Is(err, ErrPrincipalNotFound):
		CheckSecret(dummySecretHash, req.ClientSecret) // same work as a wrong secret
		return TokenResponse{}, errInvalidClient()
	case err != nil:
		return TokenResponse{}, fmt.Errorf("identity: Token: look up client: %w", err)
	case !CheckSecret(p.SecretHash, req.ClientSecret):
		return TokenResponse{}, errInvalidClient()
	}

	audience, ok := matchAudience(resource, allowedAudiences)
	if !ok {
		return TokenResponse{}, oauthError(OAuthInvalidScope, 500011,
			fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the resource is not served by this region, or if the scope or resource parameter names the wrong resource.", quoteInput(resource), i.tenant))
	}
	token, _, err := i.Issue(p, audience)
	if err != nil {
		return TokenResponse{}, err
	}
	secs := int(i.lifetime / time.Second)
	return TokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: token}, nil
}

func missingParameter(name string) *OAuthError {
	return oauthError(OAuthInvalidRequest, 900144, "The request body must contain the following parameter: '"+name+"'.")
}

func errInvalidClient() *OAuthError {
	return oauthError(OAuthInvalidClient, 7000215,
		"Invalid client credentials: the client id is unknown or the client secret is wrong. Ensure the secret being sent is the client secret value.")
}

// requestedResource returns the resource named by the v2 scope or, without
// one, the v1 resource parameter.
func requestedResource(req TokenRequest) (string, error) {
	if req.Scope == "" {
		if req.Resource == "" {
			return "", missingParameter("scope")
		}
		return req.Resource, nil
	}
	var resource string
	for _, s := range strings.Fields(req.Scope) {
		switch {
		case oidcScopes[s]:
		case strings.HasSuffix(s, "/.default") && len(s) > len("/.default"):
			if resource != "" && resource != strings.TrimSuffix(s, "/.default") {
				return "", oauthError(OAuthInvalidScope, 70011,
					"The provided value for the input parameter 'scope' is not valid. A token can be requested for one resource only.")
			}
			resource = strings.TrimSuffix(s, "/.default")
		default:
			return "", invalidScope(req.Scope)
		}
	}
	if resource == "" {
		return "", invalidScope(req.Scope)
	}
	if req.Resource != "" && trimSlash(req.Resource) != trimSlash(resource) {
		return "", oauthError(OAuthInvalidRequest, 90009,
			"The 'scope' and 'resource' parameters name different resources.")
	}
	return resource, nil
}

func invalidScope(scope string) *OAuthError {
	return oauthError(OAuthInvalidScope, 1002012,
		fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", quoteInput(scope)))
}

// matchAudience returns the entry of allowed that resource names, ignoring
// one trailing slash on either.
func matchAudience(resource string, allowed []string) (string, bool) {
	r := trimSlash(resource)
	if r == "" {
		return "", false
	}
	for _, a := range allowed {
		if trimSlash(a) == r {
			return a, true
		}
	}
	return "", false
}

func trimSlash(s string) string { return strings.TrimSuffix(s, "/") }
