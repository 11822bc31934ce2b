# kalavara_warnings(target): the warning set every project target builds with.
function(kalavara_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wnon-virtual-dtor -Wold-style-cast
                                           # g++ 12 misreads Asio's coroutine frame allocator.
                                           -Wno-mismatched-new-delete)
endfunction()
