#include "api/json_shape.h"

#include "core/resource_id.h"

namespace stratus::api {

Shape Shape::Object(std::vector<std::pair<std::string, Shape>> members) {
  Shape s(Kind::kObject);
  s.members_ = std::move(members);
  return s;
}

Shape Shape::ArrayOf(Shape item) {
  Shape s(Kind::kArray);
  s.item_ = std::make_shared<const Shape>(std::move(item));
  return s;
}

Shape Shape::MapOf(Shape value) {
  Shape s(Kind::kMap);
  s.item_ = std::make_shared<const Shape>(std::move(value));
  return s;
}

Shape Shape::Resource(Shape properties) {
  return Object({{"location", String()},
                 {"tags", MapOf(String())},
                 {"sku", Object({{"name", String()}, {"tier", String()}})},
                 {"properties", std::move(properties)},
                 {"id", String()},
                 {"name", String()},
                 {"type", String()},
                 {"etag", String()},
                 {"systemData", Any()}});
}

namespace {

const char* KindName(Shape::Kind k) {
  switch (k) {
    case Shape::Kind::kAny:
      return "any value";
    case Shape::Kind::kString:
      return "a string";
    case Shape::Kind::kInteger:
      return "an integer";
    case Shape::Kind::kNumber:
      return "a number";
    case Shape::Kind::kBoolean:
      return "true or false";
    case Shape::Kind::kObject:
      return "an object";
    case Shape::Kind::kArray:
      return "an array";
    case Shape::Kind::kMap:
      return "an object";
  }
  return "?";
}

const char* TypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_float:
      return "a number with a fraction";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    default:
      return "a value of another type";
  }
}

bool Matches(const Json& v, Shape::Kind k) {
  switch (k) {
    case Shape::Kind::kAny:
      return true;
    case Shape::Kind::kString:
      return v.is_string();
    case Shape::Kind::kInteger:
      return v.is_number_integer();
    case Shape::Kind::kNumber:
      return v.is_number();
    case Shape::Kind::kBoolean:
      return v.is_boolean();
    case Shape::Kind::kObject:
    case Shape::Kind::kMap:
      return v.is_object();
    case Shape::Kind::kArray:
      return v.is_array();
  }
  return false;
}

std::string Join(const std::string& path, const std::string& member) {
  return path.empty() ? member : path + "." + member;
}

}  // namespace

Status CheckShape(Json& value, const Shape& shape, const std::string& path) {
  if (!Matches(value, shape.kind_)) {
    std::string where = path.empty() ? "The request body" : "'" + path + "'";
    return InvalidArgument(
        where + " must be " + KindName(shape.kind_) + ", not " + TypeName(value) + ".",
        path.empty() ? "body" : path, "InvalidRequestContent");
  }
  switch (shape.kind_) {
    case Shape::Kind::kObject: {
      std::vector<std::string> nulls;
      for (auto it = value.begin(); it != value.end(); ++it) {
        const Shape* member = nullptr;
        for (auto& [name, s] : shape.members_)
          if (EqualsIgnoreCase(name, it.key())) member = &s;
        if (!member) continue;
        if (it->is_null()) {
          nulls.push_back(it.key());
          continue;
        }
        RETURN_IF_ERROR(CheckShape(*it, *member, Join(path, it.key())));
      }
      for (auto& k : nulls) value.erase(k);
      return Status::Ok();
    }
    case Shape::Kind::kArray:
      for (size_t i = 0; i < value.size(); ++i)
        RETURN_IF_ERROR(CheckShape(value[i], *shape.item_, path + "[" + std::to_string(i) + "]"));
      return Status::Ok();
    case Shape::Kind::kMap:
      for (auto it = value.begin(); it != value.end(); ++it)
        RETURN_IF_ERROR(CheckShape(*it, *shape.item_, Join(path, it.key())));
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

}  // namespace stratus::api
