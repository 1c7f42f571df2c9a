// RAII owners for libvirt C handles.
//
// Every libvirt object a Stratus function obtains is held by one of these so that early returns
// (RETURN_IF_ERROR, ASSIGN_OR_RETURN) never leak a reference. libvirt objects are reference
// counted and thread-safe; a domain handle keeps its connection alive on its own.
#pragma once

#include <libvirt/libvirt.h>

#include <cstdlib>
#include <memory>

namespace stratus::compute::libvirt {

struct ConnectDeleter {
  void operator()(virConnectPtr c) const {
    if (c != nullptr) virConnectClose(c);
  }
};
// One reference to a connection. Shared because several threads may use the connection while
// another replaces it after libvirtd restarted.
using SharedConnect = std::shared_ptr<virConnect>;
inline SharedConnect MakeSharedConnect(virConnectPtr c) {
  return SharedConnect(c, ConnectDeleter{});
}

struct DomainDeleter {
  void operator()(virDomainPtr d) const {
    if (d != nullptr) virDomainFree(d);
  }
};
using DomainHandle = std::unique_ptr<virDomain, DomainDeleter>;

struct CheckpointDeleter {
  void operator()(virDomainCheckpointPtr c) const {
    if (c != nullptr) virDomainCheckpointFree(c);
  }
};
using CheckpointHandle = std::unique_ptr<virDomainCheckpoint, CheckpointDeleter>;

// A string libvirt allocated with malloc (XML descriptions, agent replies).
struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

// Typed parameter array filled by libvirt (job stats) or built with virTypedParamsAdd*.
class TypedParams {
 public:
  TypedParams() = default;
  TypedParams(const TypedParams&) = delete;
  TypedParams& operator=(const TypedParams&) = delete;
  ~TypedParams() { Reset(); }

  void Reset() {
    if (params_ != nullptr) virTypedParamsFree(params_, n_);
    params_ = nullptr;
    n_ = 0;
    max_ = 0;
  }
  // Out-parameters for libvirt calls; call Reset() before reusing.
  virTypedParameterPtr* ptr() { return &params_; }
  int* count() { return &n_; }
  int* capacity() { return &max_; }
  virTypedParameterPtr get() const { return params_; }
  int size() const { return n_; }

 private:
  virTypedParameterPtr params_ = nullptr;
  int n_ = 0;
  int max_ = 0;
};

// The array virConnectListAllDomains returns: frees every domain and the array.
class DomainList {
 public:
  DomainList() = default;
  DomainList(const DomainList&) = delete;
  DomainList& operator=(const DomainList&) = delete;
  ~DomainList() {
    if (doms_ == nullptr) return;
    for (int i = 0; i < n_; ++i) {
      if (doms_[i] != nullptr) virDomainFree(doms_[i]);
    }
    std::free(doms_);
  }
  virDomainPtr** ptr() { return &doms_; }
  // Takes the result of the list call (the count, or -1 on error).
  void set_size(int n) { n_ = n < 0 ? 0 : n; }
  int size() const { return n_; }
  virDomainPtr operator[](int i) const { return doms_[i]; }

 private:
  virDomainPtr* doms_ = nullptr;
  int n_ = 0;
};

// The array virDomainListAllCheckpoints returns: frees every checkpoint and the array.
class CheckpointList {
 public:
  CheckpointList() = default;
  CheckpointList(const CheckpointList&) = delete;
  CheckpointList& operator=(const CheckpointList&) = delete;
  ~CheckpointList() {
    if (cps_ == nullptr) return;
    for (int i = 0; i < n_; ++i) {
      if (cps_[i] != nullptr) virDomainCheckpointFree(cps_[i]);
    }
    std::free(cps_);
  }
  virDomainCheckpointPtr** ptr() { return &cps_; }
  // Takes the result of the list call (the count, or -1 on error).
  void set_size(int n) { n_ = n < 0 ? 0 : n; }
  int size() const { return n_; }
  virDomainCheckpointPtr operator[](int i) const { return cps_[i]; }

 private:
  virDomainCheckpointPtr* cps_ = nullptr;
  int n_ = 0;
};

}  // namespace stratus::compute::libvirt
