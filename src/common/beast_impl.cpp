// The one translation unit that compiles Asio and Beast (separate compilation,
// see BOOST_*_SEPARATE_COMPILATION in src/CMakeLists.txt).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
