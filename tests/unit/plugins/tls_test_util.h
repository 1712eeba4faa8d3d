#pragma once
// TLS for the plugin tests: a certificate authority and a server certificate for 127.0.0.1 and
// localhost, made at run time with OpenSSL's API and written as PEM files into the test's
// temporary directory (a plugin's ca_file points at the CA), and the LoopbackTls the receivers
// serve them with (asio::ssl). Tests that include this link OpenSSL::SSL and OpenSSL::Crypto.
// Header-only.

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "tests/unit/plugins/loopback_server.h"

namespace tandem::plugin_test {

// The PEM files of one made-up certificate authority and the server certificate it signed.
struct TestCertificates {
  // The CA's certificate: what a client is told to trust (the plugins' ca_file).
  std::filesystem::path ca_file;
  // The server's certificate (subject alternative names IP 127.0.0.1 and DNS localhost), and
  // its private key.
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};

namespace tls_internal {

struct Free {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
  void operator()(X509_EXTENSION* extension) const { X509_EXTENSION_free(extension); }
  void operator()(BIO* bio) const { BIO_free(bio); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

// Throws std::runtime_error naming `step` and OpenSSL's first queued error.
[[noreturn]] inline void Fail(const std::string& step) {
  char text[256] = "no OpenSSL error queued";
  if (const unsigned long error = ERR_get_error(); error != 0) {
    ERR_error_string_n(error, text, sizeof text);
  }
  ERR_clear_error();
  throw std::runtime_error("making test certificates: " + step + ": " + text);
}

// Returns a fresh P-256 key.
inline Owned<EVP_PKEY> MakeKey() {
  Owned<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) Fail("generating an EC key");
  return key;
}

// Adds the extension `nid` with `value` (openssl x509v3_config syntax) to `cert`, issued by
// `issuer`.
inline void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  if (extension == nullptr || X509_add_ext(cert, extension.get(), -1) != 1) {
    Fail(std::string("adding ") + OBJ_nid2sn(nid));
  }
}

// Returns a certificate of `key` for `common_name`: a CA's when `issuer` is null (self-signed),
// else a TLS server's for 127.0.0.1 and localhost, signed by `issuer` with `issuer_key`. Valid
// from an hour ago for a day, so clocks a little apart do not matter.
inline Owned<X509> MakeCertificate(EVP_PKEY* key, const std::string& common_name, long serial,
                                   X509* issuer, EVP_PKEY* issuer_key) {
  Owned<X509> cert(X509_new());
  if (cert == nullptr) Fail("X509_new");
  X509* self = cert.get();
  X509* signer = issuer != nullptr ? issuer : self;
  X509_NAME* name = X509_get_subject_name(self);
  if (X509_set_version(self, X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(self), serial) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(self), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(self), 24 * 3600) == nullptr ||
      X509_set_pubkey(self, key) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(self, X509_get_subject_name(signer)) != 1) {
    Fail("filling in the certificate for " + common_name);
  }
  if (issuer == nullptr) {
    AddExtension(self, signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(self, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(self, signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(self, signer, NID_key_usage, "critical,digitalSignature");
    AddExtension(self, signer, NID_ext_key_usage, "serverAuth");
    AddExtension(self, signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  }
  // The subject key identifier first: a self-signed certificate's authority key identifier is
  // taken from it.
  AddExtension(self, signer, NID_subject_key_identifier, "hash");
  AddExtension(self, signer, NID_authority_key_identifier, "keyid:always");
  if (X509_sign(self, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    Fail("signing the certificate for " + common_name);
  }
  return cert;
}

// Writes `file` with `write` (a PEM_write_bio_* call on the BIO).
inline void WritePem(const std::filesystem::path& file, const std::function<int(BIO*)>& write) {
  Owned<BIO> bio(BIO_new_file(file.c_str(), "w"));
  if (bio == nullptr || write(bio.get()) != 1) Fail("writing " + file.string());
}

}  // namespace tls_internal

// Makes a CA and a server certificate it signed (fresh keys each time), and writes them into
// `dir` as <prefix>ca.pem, <prefix>server.pem and <prefix>server.key. Returns their paths.
// Throws std::runtime_error naming the step that failed (a test failure).
inline TestCertificates MakeTestCertificates(const std::filesystem::path& dir,
                                             const std::string& prefix = "") {
  using namespace tls_internal;
  const Owned<EVP_PKEY> ca_key = MakeKey();
  const Owned<X509> ca =
      MakeCertificate(ca_key.get(), prefix + "tandem test CA", 1, nullptr, nullptr);
  const Owned<EVP_PKEY> server_key = MakeKey();
  const Owned<X509> server =
      MakeCertificate(server_key.get(), "127.0.0.1", 2, ca.get(), ca_key.get());
  TestCertificates files{dir / (prefix + "ca.pem"), dir / (prefix + "server.pem"),
                         dir / (prefix + "server.key")};
  WritePem(files.ca_file, [&](BIO* bio) { return PEM_write_bio_X509(bio, ca.get()); });
  WritePem(files.cert_file, [&](BIO* bio) { return PEM_write_bio_X509(bio, server.get()); });
  WritePem(files.key_file, [&](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, server_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return files;
}

// Serves TLS with a server certificate and key, through asio::ssl: what HttpReceiver and
// SmtpReceiver take to speak HTTPS, SMTPS and STARTTLS. Immutable after construction; Wrap is
// thread-safe (OpenSSL allows SSL_new on one SSL_CTX from several threads).
class ServerTls final : public LoopbackTls {
 public:
  // Loads `certificates`' server certificate and key. Throws std::system_error if they cannot
  // be loaded.
  explicit ServerTls(const TestCertificates& certificates)
      : context_(asio::ssl::context::tls_server) {
    context_.use_certificate_chain_file(certificates.cert_file.string());
    context_.use_private_key_file(certificates.key_file.string(), asio::ssl::context::pem);
  }

  std::unique_ptr<TlsLayer> Wrap(asio::ip::tcp::socket& socket) override {
    return std::make_unique<Layer>(socket, context_);
  }

 private:
  class Layer final : public TlsLayer {
   public:
    Layer(asio::ip::tcp::socket& socket, asio::ssl::context& context) : stream_(socket, context) {}

    void Handshake(std::function<void(std::error_code)> done) override {
      stream_.async_handshake(asio::ssl::stream_base::server, std::move(done));
    }
    void ReadSome(asio::mutable_buffer buffer, IoHandler done) override {
      stream_.async_read_some(buffer, std::move(done));
    }
    void Write(asio::const_buffer buffer, IoHandler done) override {
      asio::async_write(stream_, buffer, std::move(done));
    }

   private:
    asio::ssl::stream<asio::ip::tcp::socket&> stream_;
  };

  asio::ssl::context context_;
};

}  // namespace tandem::plugin_test
