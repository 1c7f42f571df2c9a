#include "core/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace stratus {
namespace {

// The message of the InvalidArgument that decoding `text` must fail with.
std::string DecodeError(std::string_view text) {
  auto r = Base64Decode(text);
  if (r.ok()) return "decoded to " + std::to_string(r->size()) + " bytes";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().arm_code(), "InvalidParameter");
  return r.status().message();
}

TEST(Base64Test, Rfc4648TestVectors) {
  const std::vector<std::pair<std::string, std::string>> kVectors = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(Base64Encode(plain), encoded) << plain;
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded << ": " << decoded.status().message();
    EXPECT_EQ(*decoded, plain) << encoded;
  }
}

TEST(Base64Test, RoundTripsEveryLengthFrom0To64) {
  for (size_t n = 0; n <= 64; ++n) {
    std::string data;
    for (size_t i = 0; i < n; ++i) data.push_back(static_cast<char>((i * 97 + n * 31 + 7) & 0xff));
    std::string encoded = Base64Encode(data);
    ASSERT_EQ(encoded.size(), 4 * ((n + 2) / 3)) << n;
    size_t padding = (3 - n % 3) % 3;
    EXPECT_EQ(encoded.find('='), padding == 0 ? std::string::npos : encoded.size() - padding) << n;
    EXPECT_EQ(encoded.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
              std::string::npos)
        << encoded;
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << n << ": " << decoded.status().message();
    EXPECT_EQ(*decoded, data) << n;
  }
}

TEST(Base64Test, RoundTripsEveryByteValue) {
  std::string data;
  for (int b = 0; b < 256; ++b) data.push_back(static_cast<char>(b));
  std::string encoded = Base64Encode(data);
  EXPECT_NE(encoded.find('+'), std::string::npos);
  EXPECT_NE(encoded.find('/'), std::string::npos);
  auto decoded = Base64Decode(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, data);
}

TEST(Base64Test, PaddingIsNotDecodedAsBytes) {
  EXPECT_EQ(Base64Decode("AA==").value(), std::string(1, '\0'));
  EXPECT_EQ(Base64Decode("AAA=").value(), std::string(2, '\0'));
  EXPECT_EQ(Base64Decode("AAAA").value(), std::string(3, '\0'));
  EXPECT_EQ(Base64Decode("Zm9vYg==").value(), "foob");
  EXPECT_EQ(Base64Decode("Zm9vYmE=").value(), "fooba");
}

TEST(Base64Test, IgnoresTheUnusedBitsBeforePadding) {
  EXPECT_EQ(Base64Decode("Zh==").value(), "f");
  EXPECT_EQ(Base64Decode("Zm9=").value(), "fo");
}

TEST(Base64Test, RefusesMissingPadding) {
  EXPECT_EQ(DecodeError("Zg"), "base64 text of 2 characters: the length is not a multiple of 4");
  EXPECT_EQ(DecodeError("Zm8"), "base64 text of 3 characters: the length is not a multiple of 4");
  EXPECT_EQ(DecodeError("Zg="), "base64 text of 3 characters: the length is not a multiple of 4");
  EXPECT_EQ(DecodeError("Zm9vYg"),
            "base64 text of 6 characters: the length is not a multiple of 4");
}

TEST(Base64Test, RefusesTruncatedText) {
  const std::string full = "Zm9vYmFyYg==";  // "foobarb"
  for (size_t n = 1; n < full.size(); ++n) {
    std::string cut = full.substr(0, n);
    auto r = Base64Decode(cut);
    if (n % 4 == 0) {
      // A cut at a group boundary is itself whole base64: of the bytes before the cut.
      ASSERT_TRUE(r.ok()) << cut;
      EXPECT_EQ(*r, std::string("foobarb").substr(0, 3 * n / 4)) << cut;
    } else {
      EXPECT_EQ(DecodeError(cut), "base64 text of " + std::to_string(n) +
                                      " characters: the length is not a multiple of 4");
    }
  }
}

TEST(Base64Test, RefusesPaddingBeforeTheEnd) {
  EXPECT_EQ(DecodeError("Zg=A"), "base64 text: '=' at offset 2 comes before the final padding");
  EXPECT_EQ(DecodeError("Z==="), "base64 text: '=' at offset 1 comes before the final padding");
  EXPECT_EQ(DecodeError("===="), "base64 text: '=' at offset 0 comes before the final padding");
  EXPECT_EQ(DecodeError("A=AA"), "base64 text: '=' at offset 1 comes before the final padding");
  // Text after the padding: two encodings glued together.
  EXPECT_EQ(DecodeError("Zg==Zg=="), "base64 text: '=' at offset 2 comes before the final padding");
}

TEST(Base64Test, RefusesCharactersOutsideTheStandardAlphabet) {
  EXPECT_EQ(DecodeError("Zm-_"),
            "base64 text: character 0x2d at offset 2 is not in the standard alphabet "
            "(A-Z a-z 0-9 + /)");
  EXPECT_EQ(DecodeError("Zm9v*A=="),
            "base64 text: character 0x2a at offset 4 is not in the standard alphabet "
            "(A-Z a-z 0-9 + /)");
  EXPECT_EQ(DecodeError("Zm9\xff"),
            "base64 text: character 0xff at offset 3 is not in the standard alphabet "
            "(A-Z a-z 0-9 + /)");
  EXPECT_EQ(DecodeError(std::string("Zm9v\0\0\0\0", 8)),
            "base64 text: character 0x00 at offset 4 is not in the standard alphabet "
            "(A-Z a-z 0-9 + /)");
}

TEST(Base64Test, RefusesWhitespaceAnywhere) {
  for (std::string text : {" Zg=", "Zg= ", "  Zm9v  ", "Zm9v    ", "\tZm8", "Zm8\n", "Zm 9",
                           "Zm9v\r\n\r\n", "Zm9v\nYmFy"}) {
    auto r = Base64Decode(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
  }
  EXPECT_EQ(DecodeError("Zm 9"),
            "base64 text: character 0x20 at offset 2 is not in the standard alphabet "
            "(A-Z a-z 0-9 + /)");
  EXPECT_EQ(DecodeError("\tZm8"),
            "base64 text: character 0x09 at offset 0 is not in the standard alphabet "
            "(A-Z a-z 0-9 + /)");
}

TEST(Base64Test, EmptyTextIsEmptyData) {
  auto r = Base64Decode("");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "");
  EXPECT_EQ(Base64Encode(""), "");
}

}  // namespace
}  // namespace stratus
