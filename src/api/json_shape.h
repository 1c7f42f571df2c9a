// Shape: the JSON types a request body must have where a provider reads it.
//
// Every provider declares, for each body it reads (PUT, PATCH, POST actions),
// the type of every member it looks at (ResourceProvider::BodyShape). ApiServer
// checks the body against it before the provider runs, so a provider can read a
// declared member with nlohmann's accessors without a type check of its own,
// and a wrong type is a 400 "InvalidRequestContent" naming the member's path
// ("properties.storageProfile.osDisk"), never a 500.
//
// Rules: members of an object are matched by name ignoring case, as
// RejectUnknownKeys does; members a shape does not declare are not checked (the
// provider rejects unknown ones); a null member is treated as absent and
// removed from the body (ARM clients send null for "not set"). A shape is
// immutable once built and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace stratus::api {

class Shape {
 public:
  enum class Kind { kAny, kString, kInteger, kNumber, kBoolean, kObject, kArray, kMap };

  static Shape Any() { return Shape(Kind::kAny); }
  static Shape String() { return Shape(Kind::kString); }
  static Shape Integer() { return Shape(Kind::kInteger); }  // JSON number without fraction
  static Shape Number() { return Shape(Kind::kNumber); }
  static Shape Boolean() { return Shape(Kind::kBoolean); }
  // An object with these members (each optional).
  static Shape Object(std::vector<std::pair<std::string, Shape>> members);
  // An array whose every element has `item`'s shape.
  static Shape ArrayOf(Shape item);
  // An object with any member names, every value of `value`'s shape (tags).
  static Shape MapOf(Shape value);

  // The body of an ARM resource PUT/PATCH: location, tags, sku {name},
  // properties.
  static Shape Resource(Shape properties);

  Kind kind() const { return kind_; }

 private:
  friend Status CheckShape(Json& value, const Shape& shape, const std::string& path);
  explicit Shape(Kind k) : kind_(k) {}
  Kind kind_;
  std::vector<std::pair<std::string, Shape>> members_;  // kObject
  std::shared_ptr<const Shape> item_;                   // kArray, kMap
};

// Checks `value` against `shape` and removes null members of declared objects.
// `path` names `value` in messages ("" for the body itself). InvalidArgument
// "InvalidRequestContent" with the path of the first mismatch as target.
Status CheckShape(Json& value, const Shape& shape, const std::string& path = "");

}  // namespace stratus::api
