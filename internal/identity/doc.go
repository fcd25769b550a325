// Package identity implements the region's identity service: service
// principals and their client secrets, an OAuth 2.0 client-credentials token
// issuer shaped like Microsoft Entra ID's v2 endpoint, and the validation of
// bearer tokens from that issuer and from trusted external OpenID Connect
// issuers.
//
// Tokens are JSON Web Tokens ([RFC 7519]) in JWS compact serialization
// ([RFC 7515]) signed with ES256 ([RFC 7518] §3.4); keys are published as a
// JWK Set ([RFC 7517]) and named by their JWK thumbprint ([RFC 7638]). The
// token endpoint follows [RFC 6749] §4.4 with Entra ID's parameters and
// errors, and the discovery document follows [OpenID Connect Discovery 1.0],
// so that the Azure SDKs (MSAL, azidentity) pointed at the region as a
// custom authority can sign in.
//
// The package is a pure core: it does no HTTP serving and no storage. The
// HTTP layer decodes requests and encodes results; principals are stored by
// the server and reached through [PrincipalDirectory]. The only network
// access is the HTTP client that fetches a trusted issuer's discovery
// document and keys.
//
// # Which API to use
//
//   - Creating a principal: [NewSecret] for its client secret (shown once),
//     [HashSecret] for what is stored. [CheckSecret] verifies one.
//   - The region's signing key: [GenerateSigningKey] once, then store
//     [SigningKey.MarshalPKCS8] sealed and load it with [ParseSigningKey].
//   - Issuing: [NewIssuer] with an [IssuerConfig]; the token endpoint calls
//     [Issuer.Token], the discovery routes serve [Issuer.OpenIDConfiguration]
//     and [Issuer.JWKS].
//   - Authenticating requests: [NewValidator] with a [ValidatorConfig], then
//     [Validator.Validate] on every bearer token. Rejections wrap
//     [ErrInvalidToken]; token-endpoint failures are [*OAuthError] values.
//     Two endpoints that accept different audiences build one Validator
//     each, the second with [ValidatorConfig.ShareKeys] set to the first;
//     [Validator.FetchKeys] fetches trusted issuers' keys at start, and
//     [ValidatorConfig.Logger] receives why a fetch failed.
//
// # Routes served by the HTTP layer
//
// For an authority A and tenant T (Entra ID's layout):
//
//	GET  A/T/v2.0/.well-known/openid-configuration   Issuer.OpenIDConfiguration
//	GET  A/T/discovery/v2.0/keys                     Issuer.JWKS
//	POST A/T/oauth2/v2.0/token                       Issuer.Token
//
// Issued tokens have iss "A/T/v2.0".
//
// [RFC 6749]: https://www.rfc-editor.org/rfc/rfc6749
// [RFC 7515]: https://www.rfc-editor.org/rfc/rfc7515
// [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
// [RFC 7518]: https://www.rfc-editor.org/rfc/rfc7518
// [RFC 7519]: https://www.rfc-editor.org/rfc/rfc7519
// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
// [OpenID Connect Discovery 1.0]: https://openid.net/specs/openid-connect-discovery-1_0.html
package identity
