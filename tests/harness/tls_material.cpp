#include "harness/tls_material.hpp"

#include <fstream>
#include <random>

#include "core/error.hpp"
#include "harness/process.hpp"

namespace gapless::test {
namespace {

namespace fs = std::filesystem;

// Long enough never to expire during a test run, short enough to be obviously
// a test certificate.
constexpr const char* kValidDays = "3650";
// Subjects are given most general RDN first, so Java prints them most
// specific first: "CN=collector, OU=gapless, O=test" (TlsMaterial::client_dn).
constexpr const char* kCaSubject = "/O=test/OU=gapless/CN=gapless test CA";
constexpr const char* kOtherCaSubject = "/O=elsewhere/CN=unrelated test CA";
constexpr const char* kBrokerSubject = "/O=test/OU=gapless/CN=localhost";
constexpr const char* kClientSubject = "/O=test/OU=gapless/CN=collector";

constexpr const char* kBrokerExtensions =
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
// Valid, from the trusted CA, but for a host no test connects to.
constexpr const char* kOtherHostExtensions =
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=DNS:other.example\n";
constexpr const char* kOtherHostSubject = "/O=test/OU=gapless/CN=other.example";
constexpr const char* kClientExtensions =
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n";

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw Error("cannot write " + path.string());
}

// Self-signed CA certificate and key.
void make_ca(const fs::path& cert, const fs::path& key, const char* subject) {
  run_checked({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-nodes", "-keyout", key, "-out", cert, "-days", kValidDays, "-subj", subject, "-addext",
               "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
}

// A new key (name.key) and its certificate request (name.csr, returned).
fs::path make_key_and_request(const fs::path& dir, const std::string& name, const char* subject) {
  fs::path csr = dir / (name + ".csr");
  run_checked({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", dir / (name + ".key"), "-out", csr, "-subj", subject});
  return csr;
}

// Key, CSR, certificate signed by the CA with the given extensions.
void make_leaf(const fs::path& dir, const std::string& name, const char* subject, const char* extensions,
               const fs::path& ca_cert, const fs::path& ca_key) {
  fs::path csr = make_key_and_request(dir, name, subject);
  fs::path ext = dir / (name + ".ext");
  fs::path cert = dir / (name + ".pem");
  write_file(ext, extensions);
  // A random serial per certificate (no .srl file shared between calls).
  run_checked({"openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial",
               std::to_string(std::random_device{}()), "-days", kValidDays, "-extfile", ext, "-out", cert});
  fs::remove(csr);
  fs::remove(ext);
}

// Like make_leaf, with a validity that ended long ago. `openssl x509` of
// OpenSSL 3.0 takes only -days (from now); `openssl ca` takes explicit
// -startdate/-enddate, and needs a CA database, kept in a directory of its own.
void make_expired_leaf(const fs::path& dir, const std::string& name, const char* subject, const char* extensions,
                       const fs::path& ca_cert, const fs::path& ca_key) {
  const fs::path db = dir / (name + ".ca-db");
  fs::remove_all(db);
  fs::create_directories(db);
  write_file(db / "index.txt", "");
  write_file(db / "serial", "01\n");
  write_file(db / "ca.cnf", "[ca]\ndefault_ca = test\n[test]\ndatabase = " + (db / "index.txt").string() +
                                "\nnew_certs_dir = " + db.string() + "\nserial = " + (db / "serial").string() +
                                "\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\n"
                                "commonName = supplied\n");
  write_file(db / "ext", extensions);
  fs::path csr = make_key_and_request(dir, name, subject);
  run_checked({"openssl", "ca", "-batch", "-notext", "-config", db / "ca.cnf", "-cert", ca_cert, "-keyfile", ca_key,
               "-in", csr, "-out", dir / (name + ".pem"), "-startdate", "20200101000000Z", "-enddate",
               "20210101000000Z", "-extfile", db / "ext"});
  fs::remove(csr);
  fs::remove_all(db);
}

// Fails loudly if Java cannot read the store or finds no entry of `kind`
// ("PrivateKeyEntry" / "trustedCertEntry") in it.
void check_java_reads(const fs::path& store, const std::string& password, const std::string& kind) {
  std::string listing = run_checked(
      {"keytool", "-list", "-keystore", store, "-storetype", "PKCS12", "-storepass", password});
  if (listing.find(kind) == std::string::npos) {
    throw Error("Java sees no " + kind + " in " + store.string() + ":\n" + listing);
  }
}

}  // namespace

void write_broker_keystore(const TlsMaterial& material, const fs::path& cert, const fs::path& key) {
  run_checked({"openssl", "pkcs12", "-export", "-in", cert, "-inkey", key, "-certfile", material.ca_cert, "-name",
               "broker", "-out", material.broker_keystore, "-passout", "pass:" + material.store_password});
}

TlsMaterial generate_tls_material(const fs::path& dir) {
  fs::create_directories(dir);
  TlsMaterial m;
  m.dir = dir;
  m.ca_cert = dir / "ca.pem";
  m.broker_cert = dir / "broker.pem";
  m.broker_key = dir / "broker.key";
  m.client_cert = dir / "client.pem";
  m.client_key = dir / "client.key";
  m.broker_keystore = dir / "broker.p12";
  m.broker_truststore = dir / "trust.p12";
  m.store_password = TlsMaterial::default_store_password;
  m.other_ca_cert = dir / "other-ca.pem";
  m.other_client_cert = dir / "other-client.pem";
  m.other_client_key = dir / "other-client.key";

  const fs::path ca_key = dir / "ca.key";
  const fs::path other_ca_key = dir / "other-ca.key";
  make_ca(m.ca_cert, ca_key, kCaSubject);
  make_leaf(dir, "broker", kBrokerSubject, kBrokerExtensions, m.ca_cert, ca_key);
  make_leaf(dir, "client", kClientSubject, kClientExtensions, m.ca_cert, ca_key);
  make_ca(m.other_ca_cert, other_ca_key, kOtherCaSubject);
  make_leaf(dir, "other-client", kClientSubject, kClientExtensions, m.other_ca_cert, other_ca_key);

  write_broker_keystore(m, m.broker_cert, m.broker_key);
  fs::remove(m.broker_truststore);  // keytool adds to an existing store
  run_checked({"keytool", "-importcert", "-noprompt", "-alias", "gapless-test-ca", "-file", m.ca_cert,
               "-keystore", m.broker_truststore, "-storetype", "PKCS12", "-storepass", m.store_password});

  check_java_reads(m.broker_keystore, m.store_password, "PrivateKeyEntry");
  check_java_reads(m.broker_truststore, m.store_password, "trustedCertEntry");
  return m;
}

RefusedServerCertificates generate_refused_server_certificates(const TlsMaterial& material) {
  const fs::path& dir = material.dir;
  const fs::path ca_key = dir / "ca.key";
  make_expired_leaf(dir, "expired", kBrokerSubject, kBrokerExtensions, material.ca_cert, ca_key);
  make_leaf(dir, "other-host", kOtherHostSubject, kOtherHostExtensions, material.ca_cert, ca_key);
  return {.expired_cert = dir / "expired.pem",
          .expired_key = dir / "expired.key",
          .other_host_cert = dir / "other-host.pem",
          .other_host_key = dir / "other-host.key"};
}

}  // namespace gapless::test
