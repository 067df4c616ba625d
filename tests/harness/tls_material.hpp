// Throw-away TLS material for the stomp+ssl tests: a CA, a broker certificate,
// a client certificate for gapless, the broker's Java key and trust stores,
// and an unrelated second CA (with its own client certificate) whose
// certificates every side must reject.
//
// Made with the openssl CLI and keytool (both on every machine that has the
// broker): keytool is needed for the trust store because Java 17 ignores
// certificate-only entries of a PKCS12 file written by OpenSSL 3.0 (they lack
// Oracle's "trusted key usage" attribute; `openssl pkcs12 -jdktrust` only
// arrived in OpenSSL 3.2). broker.p12 (key + chain) is written by openssl and
// Java reads it as is.
//
// EC P-256 keys: fast to generate (the whole set takes well under a second)
// and accepted by Java 17 and OpenSSL alike.
#pragma once

#include <filesystem>
#include <string>

namespace gapless::test {

struct TlsMaterial {
  std::filesystem::path dir;

  std::filesystem::path ca_cert;      // ca.pem: trust anchor for the broker certificate
  std::filesystem::path broker_cert;  // broker.pem: SAN IP:127.0.0.1, DNS:localhost
  std::filesystem::path broker_key;   // broker.key
  std::filesystem::path client_cert;  // client.pem: subject CN=collector, OU=gapless, O=test
  std::filesystem::path client_key;   // client.key (unencrypted PEM)

  // For the broker (gapless-test-broker --ssl-dir DIR expects these names).
  std::filesystem::path broker_keystore;    // broker.p12: broker key + certificate + CA
  std::filesystem::path broker_truststore;  // trust.p12: the CA, as a trusted entry
  std::string store_password;               // of both .p12 files

  // Negative tests: a CA nobody trusts, and a client certificate it issued
  // with the very same subject as client_cert.
  std::filesystem::path other_ca_cert;      // other-ca.pem
  std::filesystem::path other_client_cert;  // other-client.pem
  std::filesystem::path other_client_key;   // other-client.key

  // The client certificate's subject as Java prints it; etc/broker/dns.properties
  // maps exactly this DN to user `collector`.
  static constexpr const char* client_dn = "CN=collector, OU=gapless, O=test";
  // The password gapless-test-broker assumes unless given --ssl-password.
  static constexpr const char* default_store_password = "gapless-test";
};

// Creates `dir` if needed and writes all files into it (overwriting).
// Throws gapless::Error with the failing command and its stderr. Checks that
// Java can read both stores (keytool -list) before returning.
TlsMaterial generate_tls_material(const std::filesystem::path& dir);

// (Re)writes material.broker_keystore with `cert` and `key` (and the CA), as
// generate_tls_material writes it with the broker's own: a broker restarted
// on the same directory then presents that certificate.
void write_broker_keystore(const TlsMaterial& material, const std::filesystem::path& cert,
                           const std::filesystem::path& key);

// Server certificates every client must refuse although the trusted CA
// (TlsMaterial::ca_cert) signed them: one whose validity ended in 2021, one
// valid but naming another host. Each with its key, as a PEM pair a test
// server (cpp-httplib's SSLServer, a bare OpenSSL listener) loads.
struct RefusedServerCertificates {
  std::filesystem::path expired_cert;     // expired.pem: 2020-01-01 to 2021-01-01, SAN IP:127.0.0.1, DNS:localhost
  std::filesystem::path expired_key;      // expired.key
  std::filesystem::path other_host_cert;  // other-host.pem: valid, SAN DNS:other.example only
  std::filesystem::path other_host_key;   // other-host.key
};

// Writes them into material.dir, signed with the CA key generate_tls_material
// left there (ca.key). Throws gapless::Error as generate_tls_material does.
RefusedServerCertificates generate_refused_server_certificates(const TlsMaterial& material);

}  // namespace gapless::test
