package securitydomain_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"tresor/internal/securitydomain"
)

// Open a security-domain file with two of its three custodian keys, then
// re-encrypt its blobs to a new HSM's exchange certificate, as az keyvault
// security-domain restore-blob does.
func ExampleFile_Open() {
	dir := "testdata/azure-security-domain"
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			log.Fatal(err)
		}
		return b
	}
	file, err := securitydomain.ParseFile(read("sdfile.json"))
	if err != nil {
		log.Fatal(err)
	}
	var custodians []securitydomain.Custodian
	for _, n := range []string{"sd1", "sd3"} {
		cert, err := securitydomain.ParseCertificatePEM(read(n + ".cer"))
		if err != nil {
			log.Fatal(err)
		}
		key, err := securitydomain.ParsePrivateKeyPEM(read(n+".pem"), nil)
		if err != nil {
			log.Fatal(err)
		}
		custodians = append(custodians, securitydomain.Custodian{Cert: cert, Key: key})
	}
	blobs, err := file.Open(custodians)
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range blobs {
		fmt.Println(b.Tag, len(b.Data))
	}

	exchange, err := securitydomain.ParseCertificatePEM(read("exchange.cer"))
	if err != nil {
		log.Fatal(err)
	}
	upload, err := securitydomain.BuildUploadBlob(blobs, exchange, nil)
	if err != nil {
		log.Fatal(err)
	}
	exchangeKey, err := securitydomain.ParsePrivateKeyPEM(read("exchange.key"), nil)
	if err != nil {
		log.Fatal(err)
	}
	restored, err := securitydomain.OpenUploadBlob(upload, exchange.DER, exchangeKey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(restored), "blobs restored")
	// Output:
	// hsm_backup 8180
	// base_enclave_backup 869
	// partition_enclave_backup 2945
	// 3 blobs restored
}
