#include "daemon/engine/internal/yaml_proto.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

#include "daemon/base/check.h"

namespace tandem::engine::internal {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// "FactType" -> "FACT_TYPE_", the prefix C12 puts on every enumerator.
std::string EnumPrefix(const EnumDescriptor* e) {
  std::string out;
  for (char c : e->name()) {
    if (std::isupper(static_cast<unsigned char>(c)) && !out.empty()) out += '_';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out + "_";
}

class Converter {
 public:
  Converter(std::string_view origin, LineMap* lines) : origin_(origin), lines_(lines) {}

  Status Message(const YAML::Node& node, const std::string& path, google::protobuf::Message* msg) {
    if (!node.IsMap()) {
      return Error(node, path, "expected a mapping of " + msg->GetDescriptor()->name() + " fields");
    }
    const Descriptor* d = msg->GetDescriptor();
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      const std::string field_path = path.empty() ? key : path + "." + key;
      const FieldDescriptor* f = d->FindFieldByName(key);
      if (f == nullptr) return Error(kv.first, field_path, "unknown field; " + Known(d));
      if (!seen.insert(key).second) return Error(kv.first, field_path, "given twice");
      if (const auto* oneof = f->containing_oneof(); oneof != nullptr) {
        for (int i = 0; i < oneof->field_count(); ++i) {
          const FieldDescriptor* other = oneof->field(i);
          if (other != f && seen.count(other->name()) != 0) {
            return Error(kv.first, field_path,
                         "only one of '" + other->name() + "' and '" + key + "' may be given");
          }
        }
      }
      lines_->Record(field_path, kv.first.Mark().line + 1);
      TANDEM_RETURN_IF_ERROR(Field(kv.second, field_path, msg, f));
    }
    return OkStatus();
  }

 private:
  Status Field(const YAML::Node& node, const std::string& path, google::protobuf::Message* msg,
               const FieldDescriptor* f) {
    if (!node.IsDefined() || node.IsNull()) {
      // An empty value has no position of its own (yaml-cpp marks the token after it), so the
      // error names the line of its key, recorded before this call.
      return ErrorAt(lines_->LineOf(path), path, "has no value");
    }
    const Reflection* r = msg->GetReflection();
    if (f->is_map()) return Map(node, path, msg, f);
    if (f->is_repeated()) {
      if (!node.IsSequence()) return Error(node, path, "expected a list");
      for (std::size_t i = 0; i < node.size(); ++i) {
        const std::string item_path = path + "[" + std::to_string(i) + "]";
        lines_->Record(item_path, node[i].Mark().line + 1);
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          TANDEM_RETURN_IF_ERROR(Submessage(node[i], item_path, r->AddMessage(msg, f)));
        } else {
          TANDEM_RETURN_IF_ERROR(Scalar(node[i], item_path, msg, f, /*repeated=*/true));
        }
      }
      return OkStatus();
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return Submessage(node, path, r->MutableMessage(msg, f));
    }
    return Scalar(node, path, msg, f, /*repeated=*/false);
  }

  // A message, or the list shorthand for a message whose only field is repeated.
  Status Submessage(const YAML::Node& node, const std::string& path,
                    google::protobuf::Message* sub) {
    const Descriptor* d = sub->GetDescriptor();
    if (d->full_name() == "google.protobuf.Struct") {
      // Free-form settings (a plugin's own configuration): any mapping, checked by its reader.
      auto* object = dynamic_cast<google::protobuf::Struct*>(sub);
      // Struct fields are always the generated type: this file links struct.pb.
      TANDEM_CHECK(object != nullptr);
      if (!node.IsMap()) return Error(node, path, "expected a mapping");
      google::protobuf::Value value;
      TANDEM_RETURN_IF_ERROR(FreeForm(node, path, &value));
      *object = value.struct_value();
      return OkStatus();
    }
    if (node.IsSequence() && d->field_count() == 1 && d->field(0)->is_repeated()) {
      return Field(node, path, sub, d->field(0));
    }
    return Message(node, path, sub);
  }

  // Any YAML value as a google.protobuf.Value. A plain scalar that reads as true/false, null or
  // a number is one (as in JSON); a quoted scalar is always a string.
  Status FreeForm(const YAML::Node& node, const std::string& path, google::protobuf::Value* out) {
    if (node.IsMap()) {
      google::protobuf::Struct* object = out->mutable_struct_value();
      for (const auto& kv : node) {
        const std::string key = kv.first.Scalar();
        const std::string key_path = path + "." + key;
        lines_->Record(key_path, kv.first.Mark().line + 1);
        if (object->fields().contains(key)) return Error(kv.first, key_path, "given twice");
        TANDEM_RETURN_IF_ERROR(FreeForm(kv.second, key_path, &(*object->mutable_fields())[key]));
      }
      return OkStatus();
    }
    if (node.IsSequence()) {
      google::protobuf::ListValue* list = out->mutable_list_value();
      for (std::size_t i = 0; i < node.size(); ++i) {
        TANDEM_RETURN_IF_ERROR(
            FreeForm(node[i], path + "[" + std::to_string(i) + "]", list->add_values()));
      }
      return OkStatus();
    }
    if (!node.IsDefined() || node.IsNull()) {
      out->set_null_value(google::protobuf::NULL_VALUE);
      return OkStatus();
    }
    const std::string& text = node.Scalar();
    if (node.Tag() == "?") {  // plain, not quoted
      if (text == "true" || text == "false") {
        out->set_bool_value(text == "true");
        return OkStatus();
      }
      // Only what reads as a number in YAML and JSON alike: from_chars also takes "nan" and
      // "inf", which are words in YAML and have no JSON form.
      double number = 0;
      const bool numeric_start =
          !text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-' ||
                            text[0] == '+' || text[0] == '.');
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (numeric_start && ec == std::errc() && end == text.data() + text.size() &&
          std::isfinite(number)) {
        out->set_number_value(number);
        return OkStatus();
      }
    }
    out->set_string_value(text);
    return OkStatus();
  }

  Status Map(const YAML::Node& node, const std::string& path, google::protobuf::Message* msg,
             const FieldDescriptor* f) {
    if (!node.IsMap()) return Error(node, path, "expected a mapping");
    const Reflection* r = msg->GetReflection();
    for (const auto& kv : node) {
      const std::string entry_path = path + "." + kv.first.Scalar();
      lines_->Record(entry_path, kv.first.Mark().line + 1);
      google::protobuf::Message* entry = r->AddMessage(msg, f);
      const Descriptor* ed = entry->GetDescriptor();
      TANDEM_RETURN_IF_ERROR(Scalar(kv.first, entry_path, entry, ed->map_key(), false));
      const FieldDescriptor* vf = ed->map_value();
      if (vf->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        TANDEM_RETURN_IF_ERROR(
            Submessage(kv.second, entry_path, entry->GetReflection()->MutableMessage(entry, vf)));
      } else {
        TANDEM_RETURN_IF_ERROR(Scalar(kv.second, entry_path, entry, vf, false));
      }
    }
    return OkStatus();
  }

  Status Scalar(const YAML::Node& node, const std::string& path, google::protobuf::Message* msg,
                const FieldDescriptor* f, bool repeated) {
    if (!node.IsScalar()) return Error(node, path, "expected a single value");
    const std::string& text = node.Scalar();
    const Reflection* r = msg->GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        // Folded scalars (`>`) end in a newline that is layout, not content.
        std::string value = text;
        while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
        repeated ? r->AddString(msg, f, value) : r->SetString(msg, f, value);
        return OkStatus();
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v;
        if (text == "true") {
          v = true;
        } else if (text == "false") {
          v = false;
        } else {
          return Error(node, path, "expected true or false");
        }
        repeated ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
        return OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        return Integer(node, path, msg, f, repeated);
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size()) {
          return Error(node, path, "expected a number");
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          repeated ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
        } else {
          repeated ? r->AddFloat(msg, f, static_cast<float>(v))
                   : r->SetFloat(msg, f, static_cast<float>(v));
        }
        return OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumDescriptor* e = f->enum_type();
        const EnumValueDescriptor* v = e->FindValueByName(Upper(text));
        if (v == nullptr) v = e->FindValueByName(EnumPrefix(e) + Upper(text));
        if (v == nullptr || v->number() == 0) {
          std::string allowed;
          for (int i = 1; i < e->value_count(); ++i) {
            std::string name = e->value(i)->name();
            if (name.rfind(EnumPrefix(e), 0) == 0) name = name.substr(EnumPrefix(e).size());
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            allowed += (i > 1 ? ", " : "") + name;
          }
          return Error(node, path, "expected one of " + allowed);
        }
        repeated ? r->AddEnum(msg, f, v) : r->SetEnum(msg, f, v);
        return OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return Error(node, path, "unsupported field type");
  }

  Status Integer(const YAML::Node& node, const std::string& path, google::protobuf::Message* msg,
                 const FieldDescriptor* f, bool repeated) {
    const std::string& text = node.Scalar();
    const Reflection* r = msg->GetReflection();
    long long v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return Error(node, path, "expected a whole number");
    }
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
          return Error(node, path, "out of range");
        }
        repeated ? r->AddInt32(msg, f, static_cast<int32_t>(v))
                 : r->SetInt32(msg, f, static_cast<int32_t>(v));
        return OkStatus();
      case FieldDescriptor::CPPTYPE_UINT32:
        if (v < 0 || v > std::numeric_limits<uint32_t>::max()) {
          return Error(node, path, "expected a whole number from 0 to 4294967295");
        }
        repeated ? r->AddUInt32(msg, f, static_cast<uint32_t>(v))
                 : r->SetUInt32(msg, f, static_cast<uint32_t>(v));
        return OkStatus();
      case FieldDescriptor::CPPTYPE_UINT64:
        if (v < 0) return Error(node, path, "expected a whole number of 0 or more");
        repeated ? r->AddUInt64(msg, f, static_cast<uint64_t>(v))
                 : r->SetUInt64(msg, f, static_cast<uint64_t>(v));
        return OkStatus();
      default:
        repeated ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
        return OkStatus();
    }
  }

  static std::string Known(const Descriptor* d) {
    std::string out = "expected one of: ";
    for (int i = 0; i < d->field_count(); ++i) out += (i ? ", " : "") + d->field(i)->name();
    return out;
  }

  Status Error(const YAML::Node& node, const std::string& path, const std::string& what) const {
    return ErrorAt(node.IsDefined() ? node.Mark().line + 1 : lines_->LineOf(path), path, what);
  }

  Status ErrorAt(int line, const std::string& path, const std::string& what) const {
    std::string leaf = path;
    if (auto dot = leaf.rfind('.'); dot != std::string::npos) leaf = leaf.substr(dot + 1);
    return InvalidArgumentError(std::string(origin_) + ":" + std::to_string(line) + ": field '" +
                                leaf + "': " + what);
  }

  std::string_view origin_;
  LineMap* lines_;
};

}  // namespace

int LineMap::LineOf(std::string_view path) const {
  std::string p(path);
  while (!p.empty()) {
    if (auto it = lines_.find(p); it != lines_.end()) return it->second;
    const auto cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p.resize(cut);
  }
  return 1;
}

std::string LineMap::Where(std::string_view origin, std::string_view path) const {
  std::string leaf(path);
  if (auto bracket = leaf.rfind('['); bracket != std::string::npos && leaf.back() == ']') {
    leaf = leaf.substr(0, bracket);
  }
  if (auto dot = leaf.rfind('.'); dot != std::string::npos) leaf = leaf.substr(dot + 1);
  return std::string(origin) + ":" + std::to_string(LineOf(path)) + ": field '" + leaf + "'";
}

Result<LineMap> ParseYamlInto(std::string_view yaml, std::string_view origin,
                              google::protobuf::Message* message) {
  message->Clear();
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's marks are 0-based; its message text carries no document content.
    return InvalidArgumentError(std::string(origin) + ":" + std::to_string(e.mark.line + 1) +
                                ": YAML syntax: " + e.msg);
  }
  LineMap lines;
  Converter converter(origin, &lines);
  try {
    TANDEM_RETURN_IF_ERROR(converter.Message(root, "", message));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string(origin) + ":" + std::to_string(e.mark.line + 1) + ": " +
                                e.msg);
  }
  return lines;
}

}  // namespace tandem::engine::internal
