package certs_test

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/wedgeproxy/wedge/certs"
)

// A Manager with a local CA serves https://localhost; clients trust
// RootPath.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "wedge-certs")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	m, err := certs.New(certs.Config{LocalCA: true, DataDir: dir})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	conf := m.TLSConfig() // for tls.Listen, or Wedge's listeners
	fmt.Println(conf.NextProtos)
	c, err := conf.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Leaf.DNSNames, c.Leaf.Issuer.Organization)
	_, err = conf.GetCertificate(&tls.ClientHelloInfo{ServerName: "example.com"})
	fmt.Println(err)
	// Output:
	// [h2 http/1.1 acme-tls/1]
	// [localhost] [Wedge local CA]
	// no certificate for this server name: "example.com"
}
