// A C++ struct bound as a Python class whose fields are documented attributes and whose
// __repr__ lists them (TypeName(field=value, ...)), as a dataclass prints itself.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

namespace led_bind {

template <typename T> class Record {
public:
    Record(pybind11::module_ & module, const char * name, const char * doc) : type_(module, name, doc) {
        auto fields = fields_;
        type_.def("__repr__", [fields](pybind11::handle self) {
            std::string out = pybind11::type::handle_of(self).attr("__name__").cast<std::string>() + "(";
            for (size_t i = 0; i < fields->size(); ++i) {
                if (i > 0) out += ", ";
                out += std::string((*fields)[i]) + "=" + pybind11::repr(self.attr((*fields)[i])).cast<std::string>();
            }
            return out + ")";
        });
    }

    // A field Python reads only (results).
    template <typename D> Record & readonly(const char * name, const D T::* field, const char * doc) {
        type_.def_readonly(name, field, doc);
        fields_->push_back(name);
        return *this;
    }

    // A field Python may also set (options).
    template <typename D> Record & readwrite(const char * name, D T::* field, const char * doc) {
        type_.def_readwrite(name, field, doc);
        fields_->push_back(name);
        return *this;
    }

    pybind11::class_<T> & type() { return type_; }

private:
    pybind11::class_<T> type_;
    std::shared_ptr<std::vector<const char *>> fields_ = std::make_shared<std::vector<const char *>>();
};

}  // namespace led_bind
