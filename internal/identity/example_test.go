package identity_test

import (
	"context"
	"fmt"
	"log"

	"tresor/internal/identity"
)

// directory is a PrincipalDirectory holding one principal.
type directory struct{ p identity.Principal }

func (d directory) PrincipalByClientID(_ context.Context, clientID string) (identity.Principal, error) {
	if clientID != d.p.ClientID {
		return identity.Principal{}, identity.ErrPrincipalNotFound
	}
	return d.p, nil
}

// The token endpoint issues a token for a principal's client credentials,
// and the validator accepts it on a data-plane request.
func Example() {
	key, err := identity.GenerateSigningKey()
	if err != nil {
		log.Fatal(err)
	}
	issuer, err := identity.NewIssuer(identity.IssuerConfig{
		Authority: "https://localhost:8443",
		TenantID:  "6f1c4d2e-8a3b-4c5d-9e0f-112233445566",
	}, key)
	if err != nil {
		log.Fatal(err)
	}
	secret, err := identity.NewSecret()
	if err != nil {
		log.Fatal(err)
	}
	dir := directory{identity.Principal{
		ObjectID:   "0b7e4a0c-1d2e-4f3a-8b9c-aabbccddeeff",
		ClientID:   "c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8",
		SecretHash: identity.HashSecret(secret),
	}}
	hsm := "https://managedhsm.local:8443"

	resp, err := issuer.Token(context.Background(), dir, identity.TokenRequest{
		TenantID:     "6f1c4d2e-8a3b-4c5d-9e0f-112233445566",
		GrantType:    "client_credentials",
		ClientID:     "c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8",
		ClientSecret: secret,
		Scope:        hsm + "/.default openid offline_access profile",
	}, []string{hsm})
	if err != nil {
		log.Fatal(err)
	}

	validator, err := identity.NewValidator(identity.ValidatorConfig{Local: issuer, LocalAudiences: []string{hsm}})
	if err != nil {
		log.Fatal(err)
	}
	caller, err := validator.Validate(context.Background(), resp.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.TokenType, resp.ExpiresIn)
	fmt.Println(caller.ObjectID, caller.Issuer, caller.Local)
	// Output:
	// Bearer 3600
	// 0b7e4a0c-1d2e-4f3a-8b9c-aabbccddeeff https://localhost:8443/6f1c4d2e-8a3b-4c5d-9e0f-112233445566/v2.0 true
}
